// deno-lint-ignore-file no-console
/**
 * Benchmark of `ctre record-image-starts` (not a test): replays a generated, realistic
 * `ctr event` stream through the real record() loop and Recorder, with a fake ctr that serves
 * the stream from a file in pipe-sized reads and answers `namespace ls`, `container ls` and
 * `containers info` while counting them (each one a ctr process the real daemon would spawn).
 * The DB goes to a real temp state dir, flushed every second.
 *
 *   deno run --allow-read --allow-write --allow-run scripts/bench/recorder.ts [--lines N] [--quiet]
 *     [--profile DIR]   (a V8 CPU profile of each replay, `deno run --cpu-prof`, into DIR)
 *
 * Line shapes are those of tests/testdata/ctr-1.6/events.txt (real containerd 1.6.20 output)
 * when present, else a built-in copy of the same capture. Exits 1 if a target is missed:
 * ≥ 100,000 events/s, no `ctr containers info` for containers seen created or listed, no ctr
 * per container beyond start-up (one listing of each namespace whose containers name no image,
 * docker's), DB writes ≤ wall seconds + 1, peak RSS < 64 MB. The replays run with the V8 flags
 * ctre ships with (lib/cli/permissions.ts) unless `--v8-flags` says otherwise.
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Ctr, type CtrResult, type CtrStream, splitLines } from "../../lib/ctr/runner.ts";
import { type Io, streamWriter, type Writer } from "../../lib/core/io.ts";
import { record, type RecordOptions } from "../../lib/recorder/recorder.ts";
import { ctrGateway } from "../../lib/ctr/ctr_gateway.ts";
import { parseUsageDb } from "../../lib/state/usage_db.ts";
import { RUNTIME_FLAGS } from "../../lib/cli/permissions.ts";
import { prng } from "../../tests/support/random.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    lines: { type: "string", default: "120000" },
    quiet: { type: "boolean", default: false },
    seed: { type: "string", default: "42" },
    /** Events/s of the second, paced pass, which shows DB writes bounded by the interval. */
    rate: { type: "string", default: "20000" },
    /** Internal: replay this generated stream (a fresh process, so RSS is the recorder's). */
    replay: { type: "string" },
    /** V8 flags of the replays (`--v8-flags=…`; "" for V8's defaults); the shipped ones by default. */
    "v8-flags": { type: "string" },
    /** Where each replay writes a V8 CPU profile (`--cpu-prof`); none when absent. */
    profile: { type: "string" },
    /** Internal: pace of this replay in events/s, 0 for as fast as possible. */
    pace: { type: "string", default: "0" },
  },
});
const TARGET_LINES = Number(args.values.lines);
const QUIET = args.values.quiet;

const CONTAINERS = 2000;
const PREEXISTING = 200;
const IMAGES = 500;
const NAMESPACES = [
  { ns: "k8s.io", weight: 0.7, images: true },
  { ns: "default", weight: 0.12, images: true },
  { ns: "buildkit", weight: 0.06, images: true },
  { ns: "moby", weight: 0.12, images: false }, // dockerd's containers carry no image
];

// ---------------------------------------------------------------------------------------------
// Line templates: real lines, with the container id, image, exec id, pids and times made
// placeholders.

const BUILTIN_EVENTS = String.raw`
2026-11-27 21:52:32.071520147 +0000 UTC default /images/create {"name":"docker.io/library/ctre-events:1"}
2026-11-27 21:52:32.092875812 +0000 UTC default /snapshot/prepare {"key":"extract-84213799-E394 sha256:5b1dd2b335e89f7797c452f34e3912544ecc0f0d43a632d30007e2031018138d"}
2026-11-27 21:52:32.125076322 +0000 UTC default /snapshot/commit {"key":"extract-84213799-E394 sha256:5b1dd2b335e89f7797c452f34e3912544ecc0f0d43a632d30007e2031018138d","name":"sha256:5b1dd2b335e89f7797c452f34e3912544ecc0f0d43a632d30007e2031018138d"}
2026-11-27 21:52:32.225823306 +0000 UTC default /images/update {"name":"docker.io/library/ctre-events:1","labels":{"example.com/owner":"ctre"}}
2026-11-27 21:52:32.277899876 +0000 UTC default /snapshot/prepare {"key":"ctre-ev","parent":"sha256:5b1dd2b335e89f7797c452f34e3912544ecc0f0d43a632d30007e2031018138d"}
2026-11-27 21:52:32.292901727 +0000 UTC default /containers/create {"id":"ctre-ev","image":"docker.io/library/ctre-events:1","runtime":{"name":"io.containerd.runc.v2","options":{"type_url":"containerd.runc.v1.Options","value":"OigvdG1wL2N0cmUtZTJlLWNmOTViY2Q2M2VhM2I1ZjQvcnVuYy1yb290"}}}
2026-11-27 21:52:32.403051772 +0000 UTC default /tasks/create {"container_id":"ctre-ev","bundle":"/run/containerd/io.containerd.runtime.v2.task/default/ctre-ev","rootfs":[{"type":"overlay","source":"overlay","options":["index=off","workdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/2/work","upperdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/2/fs","lowerdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs"]}],"io":{"stdin":"/run/containerd/fifo/2342569004/ctre-ev-stdin","stdout":"/run/containerd/fifo/2342569004/ctre-ev-stdout","stderr":"/run/containerd/fifo/2342569004/ctre-ev-stderr"},"pid":16418}
2026-11-27 21:52:32.433762609 +0000 UTC default /tasks/start {"container_id":"ctre-ev","pid":16418}
2026-11-27 21:52:32.484726563 +0000 UTC default /tasks/exec-added {"container_id":"ctre-ev","exec_id":"x1"}
2026-11-27 21:52:32.55524793 +0000 UTC default /tasks/exec-started {"container_id":"ctre-ev","exec_id":"x1","pid":16464}
2026-11-27 21:52:32.55607458 +0000 UTC default /tasks/exit {"container_id":"ctre-ev","id":"x1","pid":16464,"exited_at":"2026-11-27T21:52:32.555195171Z"}
2026-11-27 21:52:32.600053647 +0000 UTC default /tasks/exit {"container_id":"ctre-ev","id":"ctre-ev","pid":16418,"exit_status":137,"exited_at":"2026-11-27T21:52:32.599923112Z"}
2026-11-27 21:52:32.680157843 +0000 UTC default /tasks/delete {"container_id":"ctre-ev","pid":16418,"exit_status":137,"exited_at":"2026-11-27T21:52:32.599923112Z"}
2026-11-27 21:52:32.729191578 +0000 UTC default /snapshot/remove {"key":"ctre-ev"}
2026-11-27 21:52:32.731421058 +0000 UTC default /containers/delete {"id":"ctre-ev"}
2026-11-27 21:52:32.751736673 +0000 UTC default /images/delete {"name":"docker.io/library/ctre-events:1-alias"}
`;

type Kind =
  | "images/create"
  | "images/update"
  | "images/delete"
  | "snapshot/prepare-extract"
  | "snapshot/commit"
  | "snapshot/prepare"
  | "containers/create"
  | "tasks/create"
  | "tasks/start"
  | "tasks/exec-added"
  | "tasks/exec-started"
  | "tasks/exit-exec"
  | "tasks/exit"
  | "tasks/delete"
  | "snapshot/remove"
  | "containers/delete";

/** Placeholders: \x01 id, \x02 image, \x03 exec id, \x04 pid, \x05 exited_at, \x06 snapshot. */
async function loadTemplates(): Promise<{ source: string; templates: Map<Kind, string> }> {
  const path = new URL("../../tests/testdata/ctr-1.6/events.txt", import.meta.url);
  let text = BUILTIN_EVENTS;
  let source = "built-in copy of a containerd 1.6.20 capture";
  try {
    text = await Deno.readTextFile(path);
    source = "tests/testdata/ctr-1.6/events.txt";
  } catch {
    // use the built-in copy
  }
  const events = text.split("\n").filter((l) => l.trim() !== "").map((line) => {
    const m = /^\S+ \S+ \S+ \S+ (\S+) (\/\S+) (.*)$/.exec(line);
    if (!m) throw new Error(`Cannot read template line "${line}"`);
    return { topic: m[2]!, payload: JSON.parse(m[3]!) as Record<string, unknown>, json: m[3]! };
  });
  const created = events.find((e) => e.topic === "/containers/create" && e.payload.image);
  if (!created) throw new Error(`No /containers/create with an image in ${source}`);
  const id = String(created.payload.id);
  const image = String(created.payload.image);
  const templates = new Map<Kind, string>();
  for (const e of events) {
    let kind: Kind | undefined;
    const topic = e.topic.slice(1);
    if (topic === "tasks/exit") {
      kind = e.payload.id === e.payload.container_id ? "tasks/exit" : "tasks/exit-exec";
    } else if (topic === "snapshot/prepare") {
      kind = e.payload.key === id ? "snapshot/prepare" : "snapshot/prepare-extract";
    } else if (
      topic === "images/delete" || topic === "images/create" || topic === "images/update"
    ) {
      if (templates.has(topic)) continue;
      kind = topic;
    } else {
      kind = topic as Kind;
    }
    if (templates.has(kind)) continue;
    let json = e.json
      .replace(/"exited_at":("[^"]*"|\{[^}]*\})/g, '"exited_at":\x05')
      .replace(/"pid":\d+/g, '"pid":\x04')
      .replace(/"exec_id":"[^"]*"/g, '"exec_id":"\x03"');
    if (kind === "tasks/exit-exec") json = json.replace(/"id":"[^"]*"/, '"id":"\x03"');
    if (kind === "snapshot/prepare-extract" || kind === "snapshot/commit") {
      json = json.replace(/extract-[^ "]+/g, "extract-\x06");
    }
    if (kind.startsWith("images/")) json = json.replace(/"name":"[^"]*"/, '"name":"\x02"');
    json = json.replaceAll(image, "\x02").replaceAll(id, "\x01");
    templates.set(kind, json);
  }
  const missing = [
    "snapshot/prepare",
    "containers/create",
    "tasks/create",
    "tasks/start",
    "tasks/exec-added",
    "tasks/exec-started",
    "tasks/exit-exec",
    "tasks/exit",
    "tasks/delete",
    "snapshot/remove",
    "containers/delete",
    "images/update",
  ].filter((k) => !templates.has(k as Kind));
  if (missing.length) throw new Error(`${source} has no line for ${missing.join(", ")}`);
  return { source, templates };
}

// ---------------------------------------------------------------------------------------------
// The stream.

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** Go's time.String() in UTC: fraction without trailing zeros, absent when zero. */
function goTime(s: number, nanos: number): string {
  const d = new Date(s * 1000);
  const frac = nanos === 0 ? "" : `.${pad(nanos, 9).replace(/0+$/, "")}`;
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}${frac} +0000 UTC`;
}

/** RFC 3339 with nanoseconds, as 1.6 prints `exited_at`. */
function rfc3339(s: number, nanos: number): string {
  const iso = new Date(s * 1000).toISOString().slice(0, 19);
  const frac = nanos === 0 ? "" : `.${pad(nanos, 9).replace(/0+$/, "")}`;
  return `"${iso}${frac}Z"`;
}

interface Container {
  ns: string;
  id: string;
  image: string | null;
  pid: number;
}

interface Generated {
  lines: number;
  bytes: number;
  created: number;
  images: number;
  preexisting: Container[];
  namespaces: string[];
  /** The parent of every container's snapshot (the image's chain ID of the capture). */
  chain: string;
}

/**
 * Writes ≥ `target` event lines to `path`: containers created (with a snapshot), started,
 * probed by execs, restarted, stopped and deleted, images pulled and updated, across the
 * namespaces, plus PREEXISTING containers that only `ctr container ls` reveals.
 */
async function generate(path: string, target: number, seed: number): Promise<Generated> {
  const { templates } = await loadTemplates();
  const rand = prng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const images = new Map<string, string[]>();
  for (const n of NAMESPACES) images.set(n.ns, []);
  const imageNs = NAMESPACES.filter((n) => n.images);
  for (let i = 0; i < IMAGES; i++) {
    const ns = imageNs[rand() < 0.7 ? 0 : 1 + (i % 2)]!.ns;
    images.get(ns)!.push(`registry.example.com/team-${i % 25}/svc-${i}:${1 + (i % 9)}.${i % 4}`);
  }
  const chooseNs = () => {
    let r = rand();
    for (const n of NAMESPACES) {
      if ((r -= n.weight) < 0) return n;
    }
    return NAMESPACES[0]!;
  };
  let serial = 0;
  let pid = 3000;
  const newContainer = (): Container => {
    const n = chooseNs();
    serial++;
    const id = n.ns === "k8s.io" || n.ns === "moby"
      ? Array.from({ length: 4 }, () => Math.floor(rand() * 2 ** 32).toString(16).padStart(8, "0"))
        .join("").repeat(2)
      : `${n.ns}-app-${serial}`;
    return { ns: n.ns, id, image: n.images ? pick(images.get(n.ns)!) : null, pid: pid++ };
  };

  let s = Math.floor(Date.now() / 1000) - 3600;
  let nanos = 0;
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const encoder = new TextEncoder();
  let buffer: string[] = [];
  let lines = 0;
  let bytes = 0;
  const emit = async (ns: string, kind: Kind, c: Partial<Container>, extra: string[] = []) => {
    nanos += Math.floor(rand() * 40e6) + 1e5;
    if (rand() < 0.01) nanos = Math.ceil(nanos / 1e9) * 1e9; // a time with no fraction
    s += Math.floor(nanos / 1e9);
    nanos %= 1e9;
    let json = templates.get(kind);
    if (json === undefined) return;
    json = json
      .replaceAll("\x01", c.id ?? "")
      .replaceAll("\x02", c.image ?? "")
      .replaceAll("\x03", extra[0] ?? "")
      .replaceAll("\x04", String(c.pid ?? 0))
      .replaceAll("\x05", rfc3339(s, nanos))
      .replaceAll("\x06", extra[0] ?? "");
    if (kind === "containers/create" && c.image === null) {
      json = json.replace(/"image":"",?/, "");
    }
    const topic = kind === "tasks/exit-exec"
      ? "tasks/exit"
      : kind === "snapshot/prepare-extract"
      ? "snapshot/prepare"
      : kind;
    const line = `${goTime(s, nanos)} ${ns} /${topic} ${json}\n`;
    buffer.push(line);
    lines++;
    bytes += line.length;
    if (buffer.length >= 1000) {
      await file.write(encoder.encode(buffer.join("")));
      buffer = [];
    }
  };

  const live: Container[] = [];
  const preexisting: Container[] = [];
  for (let i = 0; i < PREEXISTING; i++) {
    const c = newContainer();
    live.push(c);
    preexisting.push(c);
  }
  let created = 0;
  let execs = 0;
  while (lines < target) {
    const r = rand();
    if (r < 0.07 && created < CONTAINERS) {
      const c = newContainer();
      created++;
      await emit(c.ns, "snapshot/prepare", c);
      await emit(c.ns, "containers/create", c);
      await emit(c.ns, "tasks/create", c);
      await emit(c.ns, "tasks/start", c);
      live.push(c);
    } else if (r < 0.13 && live.length > 100) {
      const c = live.splice(Math.floor(rand() * live.length), 1)[0]!;
      await emit(c.ns, "tasks/exit", c);
      await emit(c.ns, "tasks/delete", c);
      await emit(c.ns, "snapshot/remove", c);
      await emit(c.ns, "containers/delete", c);
    } else if (r < 0.18 && live.length > 0) {
      const c = pick(live);
      await emit(c.ns, "tasks/exit", c);
      await emit(c.ns, "tasks/delete", c);
      c.pid = pid++;
      await emit(c.ns, "tasks/create", c);
      await emit(c.ns, "tasks/start", c);
    } else if (r < 0.20) {
      const n = pick(imageNs);
      const image = pick(images.get(n.ns)!);
      const snap = `${Math.floor(rand() * 1e9)}-${serial}`;
      if (rand() < 0.3) {
        await emit(n.ns, "images/create", { image });
        await emit(n.ns, "snapshot/prepare-extract", {}, [snap]);
        await emit(n.ns, "snapshot/commit", {}, [snap]);
      }
      await emit(n.ns, "images/update", { image });
    } else if (live.length > 0) {
      const c = pick(live);
      const exec = `probe-${++execs}`;
      const execPid = { ...c, pid: pid++ };
      await emit(c.ns, "tasks/exec-added", c, [exec]);
      await emit(c.ns, "tasks/exec-started", execPid, [exec]);
      await emit(c.ns, "tasks/exit-exec", execPid, [exec]);
    }
  }
  await file.write(encoder.encode(buffer.join("")));
  file.close();
  return {
    lines,
    bytes,
    created,
    images: IMAGES,
    preexisting,
    namespaces: NAMESPACES.map((n) => n.ns),
    chain: /"parent":"([^"]*)"/.exec(templates.get("snapshot/prepare")!)?.[1] ?? "",
  };
}

// ---------------------------------------------------------------------------------------------
// The fake ctr and io.

/** Rows as ctr's tabwriter prints them: space-padded columns, trailing spaces. */
function columns(cells: string[][]): string {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)) + 4);
  return cells.map((r) => r.map((x, i) => x.padEnd(widths[i]!)).join("") + "\n").join("");
}

/** `ctr container ls` as ctr prints it. */
function containerLs(rows: Container[]): string {
  return columns([
    ["CONTAINER", "IMAGE", "RUNTIME"],
    ...rows.map((c) => [c.id, c.image ?? "-", "io.containerd.runc.v2"]),
  ]);
}

/** `ctr snapshot ls`: the image's chain, and the pre-existing containers' snapshots on it. */
function snapshotLs(chain: string, rows: Container[]): string {
  return columns([
    ["KEY", "PARENT", "KIND"],
    [chain, "", "Committed"],
    ...rows.map((c) => [c.id, chain, "Active"]),
  ]);
}

class ReplayCtr implements Ctr {
  readonly counts = new Map<string, number>();
  spawned = 0;

  constructor(
    readonly eventsPath: string,
    readonly gen: Generated,
    readonly onEnd: () => void,
    /** Events/s; 0 for as fast as the recorder takes them. */
    readonly pace = 0,
  ) {}

  #count(what: string) {
    this.spawned++;
    this.counts.set(what, (this.counts.get(what) ?? 0) + 1);
  }

  run(args: string[]): Promise<CtrResult> {
    const ok = (stdout: string) => Promise.resolve({ code: 0, stdout, stderr: "" });
    if (args.join(" ") === "namespace ls -q") {
      this.#count("namespace ls");
      return ok([...this.gen.namespaces].sort().join("\n") + "\n");
    }
    if (args[0] === "-n" && args[2] === "container" && args[3] === "ls") {
      this.#count("container ls");
      return ok(containerLs(this.gen.preexisting.filter((c) => c.ns === args[1])));
    }
    if (args[0] === "-n" && args[2] === "containers" && args[3] === "info") {
      this.#count("containers info");
      return Promise.resolve({
        code: 1,
        stdout: "",
        stderr: `ctr: container "${args[4]}" in namespace "${args[1]}": not found\n`,
      });
    }
    // A docker container's image is found through its snapshot (lib/node/inventory.ts): the
    // generated moby namespace holds no image, so each listing is empty, as on such a node.
    const what = args.slice(2).join(" ");
    const empty: Record<string, string> = {
      "content ls": "DIGEST\tSIZE\tAGE\tLABELS\n",
      "image ls": "REF\tTYPE\tDIGEST\tSIZE\tPLATFORMS\tLABELS\n",
    };
    if (args[0] === "-n" && what.startsWith("snapshot ")) {
      // The pre-existing containers' snapshots, on the image chain (as on a real node).
      this.#count("snapshot ls");
      return ok(snapshotLs(this.gen.chain, this.gen.preexisting.filter((c) => c.ns === args[1])));
    }
    if (args[0] === "-n" && what in empty) {
      this.#count(what);
      return ok(empty[what]!);
    }
    this.#count(args.join(" "));
    return Promise.resolve({ code: 1, stdout: "", stderr: `ctr: unexpected ${args}\n` });
  }

  stream(args: string[]): CtrStream {
    this.#count(args.join(" "));
    const path = this.eventsPath;
    const onEnd = this.onEnd;
    const pace = this.pace;
    let resolveDone: (v: { code: number; stderr: string }) => void = () => {};
    const done = new Promise<{ code: number; stderr: string }>((r) => resolveDone = r);
    let file: Deno.FsFile | undefined;
    // The file read in 64 KiB chunks, like ctr's stdout pipe, split into lines by systemCtr's
    // own splitter; when paced, each chunk waits until the lines before it are due.
    const lines = async function* () {
      file = await Deno.open(path, { read: true });
      let passed = 0;
      const t0 = performance.now();
      const paced = new TransformStream<Uint8Array, Uint8Array>({
        async transform(chunk, out) {
          const ahead = pace > 0 ? (passed / pace) * 1000 - (performance.now() - t0) : 0;
          if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
          for (const b of chunk) if (b === 10) passed++;
          out.enqueue(chunk);
        },
      });
      try {
        // Unpaced, the chunks go straight to the splitter: counting their lines would be the
        // bench's own work, charged to the recorder.
        yield* splitLines(pace > 0 ? file.readable.pipeThrough(paced) : file.readable);
      } finally {
        file = undefined;
      }
      onEnd();
      resolveDone({ code: 0, stderr: "" });
    };
    return {
      lines: lines(),
      done,
      stop() {
        resolveDone({ code: 0, stderr: "" });
      },
    };
  }
}

/** A writer to an open file (lib/core/io.ts's, as processIo makes for stdout), counting lines. */
function fileWriter(f: Deno.FsFile): Writer & { lines: number } {
  const inner = streamWriter(f);
  return {
    lines: 0,
    write(text) {
      this.lines++;
      inner.write(text);
    },
  };
}

// ---------------------------------------------------------------------------------------------

const MB = 1024 * 1024;

async function vmHwm(): Promise<number | undefined> {
  try {
    const status = await Deno.readTextFile("/proc/self/status");
    const kb = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined; // Deno may refuse /proc without --allow-all
  }
}

/** The replays' V8 flags: `--v8-flags` when given ("" for none), else those ctre ships with. */
function v8Flags(): string[] {
  const given = args.values["v8-flags"];
  if (given === undefined) return RUNTIME_FLAGS;
  return given === "" ? [] : [`--v8-flags=${given}`];
}

/** Generates the stream, then replays it in a fresh process so its RSS is the recorder's. */
async function main(): Promise<number> {
  const work = await Deno.makeTempDir({ prefix: "ctre-bench-" });
  try {
    const eventsPath = join(work, "events.txt");
    const { source } = await loadTemplates();
    console.log(`Generating ≥ ${TARGET_LINES} event lines (shapes: ${source}) ...`);
    const gen = await generate(eventsPath, TARGET_LINES, Number(args.values.seed));
    console.log(
      `  ${gen.lines} lines, ${(gen.bytes / MB).toFixed(1)} MB, ${gen.created} containers ` +
        `created + ${gen.preexisting.length} pre-existing, ${gen.images} images, ` +
        `namespaces ${gen.namespaces.join(" ")}`,
    );
    await Deno.writeTextFile(join(work, "generated.json"), JSON.stringify(gen));
    const self = new URL(import.meta.url).pathname;
    console.log(`Replays run with V8 flags: ${v8Flags().join(" ") || "none (V8's defaults)"}`);
    let failed = 0;
    for (const pace of ["0", args.values.rate]) {
      const { code } = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          ...(args.values.profile ? ["--cpu-prof", `--cpu-prof-dir=${args.values.profile}`] : []),
          ...v8Flags(),
          "--allow-read",
          "--allow-write",
          self,
          "--replay",
          work,
          "--pace",
          pace,
          ...(QUIET ? ["--quiet"] : []),
        ],
        stdin: "null",
        stdout: "inherit",
        stderr: "inherit",
      }).spawn().status;
      if (code !== 0) failed++;
    }
    return failed ? 1 : 0;
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

async function replay(work: string): Promise<number> {
  const stateDir = join(work, "state");
  const eventsPath = join(work, "events.txt");
  const gen = JSON.parse(await Deno.readTextFile(join(work, "generated.json"))) as Generated;

  // Count DB writes: every rename of image_starts.tmp onto image_starts.
  const dbPath = join(stateDir, "image_starts");
  let dbWrites = 0;
  const rename = Deno.rename;
  (Deno as { rename: typeof Deno.rename }).rename = (from, to) => {
    if (String(to) === dbPath) dbWrites++;
    return rename(from, to);
  };

  const stop = new AbortController();
  const pace = Number(args.values.pace);
  const ctr = new ReplayCtr(eventsPath, gen, () => stop.abort(), pace);
  const devNull = await Deno.open("/dev/null", { write: true });
  const stdout = fileWriter(devNull);
  let stderrText = "";
  const io: Io = {
    stdout,
    stderr: { write: (t) => void (stderrText += t) },
    stderrIsTerminal: false,
    readLine: () => Promise.resolve(null),
    now: () => Date.now() / 1000,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  };
  const opts: RecordOptions = {
    stateDir,
    quiet: QUIET,
    flushInterval: 1,
    keepWindow: 14 * 86400,
    metrics: false,
  };

  const rssBefore = Deno.memoryUsage().rss;
  let rssPeak = rssBefore;
  let heapPeak = 0;
  let heapTotalPeak = 0;
  let externalPeak = 0;
  const sampler = setInterval(() => {
    const m = Deno.memoryUsage();
    rssPeak = Math.max(rssPeak, m.rss);
    heapPeak = Math.max(heapPeak, m.heapUsed);
    heapTotalPeak = Math.max(heapTotalPeak, m.heapTotal);
    externalPeak = Math.max(externalPeak, m.external);
  }, 20);
  const t0 = performance.now();
  const code = await record(ctrGateway(ctr), opts, { ...io, signal: stop.signal });
  const wall = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  rssPeak = Math.max(rssPeak, Deno.memoryUsage().rss);
  const hwm = await vmHwm();
  (Deno as { rename: typeof Deno.rename }).rename = rename;
  devNull.close();

  const db = parseUsageDb(await Deno.readTextFile(dbPath));
  const rate = gen.lines / wall;
  const infos = ctr.counts.get("containers info") ?? 0;
  // Start-up: `ctr event`, `namespace ls`, one `container ls` per namespace.
  const beyond = ctr.spawned - 2 - gen.namespaces.length;
  const imageless = NAMESPACES.filter((n) => !n.images).length;
  const errors = stderrText.split("\n").filter((l) => l !== "");
  const counts = [...ctr.counts].map(([k, v]) => `${v} ${k}`).join(", ");
  const how = pace > 0 ? `paced at ${pace} events/s` : "as fast as it goes";
  console.log(
    `\nReplayed ${how} through record() (exit ${code}, ${QUIET ? "--quiet" : "printing"}):`,
  );
  console.log(`  wall time        ${wall.toFixed(2)} s`);
  console.log(`  events/s         ${Math.round(rate)}`);
  console.log(`  ctr processes    ${ctr.spawned} (${counts})`);
  console.log(
    `  DB writes        ${dbWrites} (${db.entries.size} entries, ${db.rejected.length} rejected)`,
  );
  console.log(`  stdout lines     ${stdout.lines}`);
  console.log(`  stderr lines     ${errors.length}${errors.length ? `: ${errors[0]}` : ""}`);
  console.log(
    `  RSS              ${(rssBefore / MB).toFixed(1)} MB at start, peak ${
      (rssPeak / MB).toFixed(1)
    } MB` + (hwm === undefined ? "" : ` (VmHWM ${(hwm / MB).toFixed(1)} MB)`) +
      `; JS heap used peak ${(heapPeak / MB).toFixed(1)} MB (${
        (Deno.memoryUsage().heapUsed / MB).toFixed(1)
      } MB at end), heap total peak ${(heapTotalPeak / MB).toFixed(1)} MB, external peak ${
        (externalPeak / MB).toFixed(1)
      } MB`,
  );

  const peak = Math.max(rssPeak, hwm ?? 0);
  const checks: [string, boolean][] = [
    pace > 0
      ? [`keeps up with ${pace} events/s (${Math.round(rate)})`, rate >= pace * 0.95]
      : [`≥ 100000 events/s (${Math.round(rate)})`, rate >= 100_000],
    [`no ctr containers info for known containers (${infos})`, infos === 0],
    [
      `no ctr per container beyond start-up: ≤ 3 per namespace without images (${beyond} ≤ ${
        3 * imageless
      })`,
      beyond <= 3 * imageless,
    ],
    [
      `DB writes ≤ wall seconds + 1 (${dbWrites} ≤ ${Math.floor(wall) + 1})`,
      dbWrites <= Math.floor(wall) + 1,
    ],
    [`peak RSS < 64 MB (${(peak / MB).toFixed(1)} MB)`, peak < 64 * MB],
    [`no errors (${errors.length})`, errors.length === 0],
    [`DB written and readable (${db.entries.size} entries)`, db.entries.size > 0],
  ];
  for (const [what, ok] of checks) console.log(`${ok ? "PASS" : "FAIL"} ${what}`);
  return checks.every(([, ok]) => ok) ? 0 : 1;
}

Deno.exit(args.values.replay === undefined ? await main() : await replay(args.values.replay));
