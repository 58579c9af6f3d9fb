/**
 * The benchmark's scenario: what a busy node holds, as data, and how to put it into a private
 * containerd (tests/support/containerd.ts).
 *
 * Three namespaces of 350 images each (1,050 digests, 1,080 refs: ten images per namespace
 * carry a second tag). Every image shares ONE busybox layer and differs only by its config, so
 * one `ctr image import` per namespace creates them all and they unpack into one snapshot.
 * Per namespace the images fall into the categories below; all content is aged 30 days except
 * the `young` ones. Containers: 50 running, 150 stopped (task STOPPED, two per `stopped` image),
 * 15 created without a task. The usage DB has 5,000 entries.
 *
 * Beside them, {@linkcode buildLayeredSet} makes two-layer images that share no layer (20 per
 * namespace, built fresh in every run) for a second removal comparison.
 *
 * The image store (content, images, labels, aged blobs, the unpacked snapshot) is built once and
 * cached as a copy of containerd's root in /tmp/ctre-bench-prune-<key>/, keyed by the scenario
 * and the image builder; containers and the usage DB are made fresh in every run (tasks do not
 * survive a containerd restart, and the DB is relative to now).
 *
 * @module
 */
import { join } from "node:path";
import { mapLimit } from "../../lib/core/concurrency.ts";
import { TestContainerd } from "../../tests/support/containerd.ts";
import {
  buildOciImage,
  buildOciImageSet,
  MEDIA_TYPE_MANIFEST,
  writeTar,
} from "../../tests/support/oci_image.ts";

export const DAY = 86400;
/** Age given to every blob but the young ones. */
export const AGED_SECONDS = 30 * DAY;
/** A cache older than this is rebuilt: its young images would be getting old. */
const CACHE_MAX_AGE_SECONDS = 3 * DAY;
/** How long one `ctr image import` of a namespace's images may take. */
const IMPORT_TIMEOUT_MS = 15 * 60_000;
/** Bump when the scenario changes in a way the key below does not see. */
const SCENARIO_VERSION = 1;

export type Category =
  | "running"
  | "stopped"
  | "created"
  | "recent"
  | "young"
  | "pinned"
  | "prune";

export interface NsSpec {
  ns: string;
  /** Short name for ids and refs. */
  short: string;
  counts: Record<Category, number>;
}

const PER_NS = 350;
/** Prunable images per namespace that carry a second tag. */
export const ALIASED = 10;
/** Stopped containers per `stopped` image. */
export const STOPPED_PER_IMAGE = 2;

function spec(ns: string, short: string, running: number, scale: number): NsSpec {
  const fixed = { running, stopped: 25, created: 5, recent: 40, young: 10, pinned: 5 };
  const scaled = Object.fromEntries(
    Object.entries(fixed).map(([k, v]) => [k, v * scale]),
  ) as typeof fixed;
  const used = Object.values(scaled).reduce((a, b) => a + b, 0);
  return { ns, short, counts: { ...scaled, prune: PER_NS * scale - used } };
}

/**
 * The scenario's namespaces at `scale` times its size (scripts/bench/growth.ts): every category
 * of image, and so every kind of container, `scale` times as many (1: 1,050 images, 215
 * containers).
 */
export function namespacesAt(scale: number): NsSpec[] {
  return [
    spec("k8s.io", "k8s", 17, scale),
    spec("default", "def", 17, scale),
    spec("moby", "moby", 16, scale),
  ];
}

export const NAMESPACES: NsSpec[] = namespacesAt(1);

/** Images removed in the removal benchmark, per namespace (500 in all). */
export const REMOVAL_COUNTS = [167, 167, 166];
export const USAGE_DB_ENTRIES = 5000;

export interface BenchImage {
  ns: string;
  category: Category;
  /** Index within its category. */
  index: number;
  refs: string[];
  digest: string;
  config: string;
}

export interface BenchContainer {
  ns: string;
  id: string;
  ref: string;
  kind: "running" | "stopped" | "created";
  labels: Record<string, string>;
}

export function refOf(s: NsSpec, category: Category, i: number, tag = "1"): string {
  return `registry.example/bench/${s.short}/${category}-${i}:${tag}`;
}

/** The images of the scenario without digests: (ns, category, index, refs, variant). */
export function plannedImages(
  namespaces: NsSpec[] = NAMESPACES,
): Omit<BenchImage, "digest" | "config">[] {
  const out: Omit<BenchImage, "digest" | "config">[] = [];
  for (const s of namespaces) {
    for (const [category, n] of Object.entries(s.counts) as [Category, number][]) {
      for (let i = 0; i < n; i++) {
        const refs = [refOf(s, category, i)];
        if (category === "prune" && i < ALIASED) refs.push(refOf(s, category, i, "alias"));
        out.push({ ns: s.ns, category, index: i, refs });
      }
    }
  }
  return out;
}

/** The containers of the scenario. Pod labels are those kubelet sets, as ctre prints them. */
export function plannedContainers(namespaces: NsSpec[] = NAMESPACES): BenchContainer[] {
  const out: BenchContainer[] = [];
  for (const s of namespaces) {
    const labels = (pod: string, container: string): Record<string, string> =>
      s.ns === "k8s.io"
        ? {
          "io.kubernetes.pod.namespace": "bench",
          "io.kubernetes.pod.name": pod,
          "io.kubernetes.container.name": container,
        }
        : { "bench.example/app": pod };
    for (let i = 0; i < s.counts.running; i++) {
      out.push({
        ns: s.ns,
        id: `${s.short}-run-${i}`,
        ref: refOf(s, "running", i),
        kind: "running",
        labels: labels(`pod-run-${i}`, "app"),
      });
    }
    for (let i = 0; i < s.counts.stopped * STOPPED_PER_IMAGE; i++) {
      const image = i % s.counts.stopped;
      out.push({
        ns: s.ns,
        id: `${s.short}-stopped-${i}`,
        ref: refOf(s, "stopped", image),
        kind: "stopped",
        labels: labels(`pod-stopped-${image}`, `job-${i}`),
      });
    }
    for (let i = 0; i < s.counts.created; i++) {
      out.push({
        ns: s.ns,
        id: `${s.short}-created-${i}`,
        ref: refOf(s, "created", i),
        kind: "created",
        labels: labels(`pod-created-${i}`, "app"),
      });
    }
  }
  return out;
}

/**
 * The usage DB: recent starts (and some stops) of the `recent` images, a start two days ago of
 * every image a container uses, stale uses (40 days ago) of every prunable ref, and old uses of
 * refs no longer present, up to {@linkcode USAGE_DB_ENTRIES} lines.
 */
export function usageDb(
  now: number,
  images: Omit<BenchImage, "digest" | "config">[],
  entries = USAGE_DB_ENTRIES,
): string {
  const lines: string[] = [];
  for (const im of images) {
    for (const ref of im.refs) {
      const at = (seconds: number) => String(Math.floor(now - seconds));
      switch (im.category) {
        case "recent":
          lines.push(
            im.index % 2 === 0
              ? `${at(3600 + im.index)} ---------- ${im.ns} ${ref}`
              : `${at(7200 + im.index)} ${at(3600)} ${im.ns} ${ref}`,
          );
          break;
        case "running":
        case "stopped":
        case "created":
          lines.push(`${at(2 * DAY)} ---------- ${im.ns} ${ref}`);
          break;
        case "prune":
          lines.push(`${at(40 * DAY)} ${at(40 * DAY - 60)} ${im.ns} ${ref}`);
          break;
        default:
          break;
      }
    }
  }
  for (let k = 0; lines.length < entries; k++) {
    const s = NAMESPACES[k % NAMESPACES.length]!;
    const start = Math.floor(now - (20 + (k % 200)) * DAY);
    lines.push(`${start} ${start + 600} ${s.ns} registry.example/bench/${s.short}/gone-${k}:1`);
  }
  return lines.join("\n") + "\n";
}

/** What must be left after a forced prune, and what a dry run must list. */
export function expectations(
  images: BenchImage[],
  containers: BenchContainer[],
  namespaces: NsSpec[] = NAMESPACES,
) {
  const line = (ns: string, ref: string) => `${ns} ${ref}`;
  const prune = images.filter((i) => i.category === "prune");
  const kept = images.filter((i) => i.category !== "prune");
  return {
    /** `ns ref` lines of the dry run's list, sorted. */
    listed: prune.flatMap((i) => i.refs.map((r) => line(i.ns, r))).sort(),
    /** Refs per namespace left after the forced prune, sorted. */
    keptRefs: new Map(
      namespaces.map((s) => [
        s.ns,
        kept.filter((i) => i.ns === s.ns).flatMap((i) => i.refs).sort(),
      ]),
    ),
    /** Container ids per namespace left after the forced prune, sorted. */
    keptContainers: new Map(
      namespaces.map((s) => [
        s.ns,
        containers.filter((c) => c.ns === s.ns && c.kind !== "stopped").map((c) => c.id).sort(),
      ]),
    ),
  };
}

// ---------------------------------------------------------------------------------------------
// Building and caching the image store.

export interface Built {
  /** The cache dir. */
  dir: string;
  images: BenchImage[];
  /** Per namespace: the OCI tarball of the removal set (re-imported before each removal). */
  removalTars: Map<string, string>;
  /** Whether this run built the cache (else it restored it). */
  fresh: boolean;
  buildSeconds: number;
}

interface CacheIndex {
  builtAt: number;
  snapshotter: string;
  images: BenchImage[];
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (out.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

async function sha256Hex(text: string): Promise<string> {
  const hash = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
  );
  return Array.from(hash.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The cache dir of this scenario, image builder and containerd version. */
export async function cacheDir(
  containerdVersion: string,
  namespaces: NsSpec[] = NAMESPACES,
): Promise<string> {
  const builder = await Deno.readTextFile(
    new URL("../../tests/support/oci_image.ts", import.meta.url),
  );
  const key = await sha256Hex(
    JSON.stringify({
      SCENARIO_VERSION,
      NAMESPACES: namespaces,
      REMOVAL_COUNTS,
      ALIASED,
      containerdVersion,
    }) +
      builder,
  );
  return `/tmp/ctre-bench-prune-${key}`;
}

/** The removal set: the first REMOVAL_COUNTS single-ref prunable images of each namespace. */
export function removalSet(
  images: BenchImage[],
  namespaces: NsSpec[] = NAMESPACES,
): Map<string, BenchImage[]> {
  return new Map(
    namespaces.map((s, j) => [
      s.ns,
      images.filter((i) => i.ns === s.ns && i.category === "prune" && i.refs.length === 1)
        .slice(0, REMOVAL_COUNTS[j]),
    ]),
  );
}

async function readIndex(dir: string): Promise<CacheIndex | null> {
  try {
    return JSON.parse(await Deno.readTextFile(join(dir, "index.json"))) as CacheIndex;
  } catch {
    return null;
  }
}

/**
 * Makes `c` hold the scenario's images: restores the cached root when it is there, fresh and of
 * the same snapshotter, else builds it (imports, pins, ages) and caches a copy of the root.
 */
export async function prepareImages(
  c: TestContainerd,
  containerdVersion: string,
  log: (text: string) => void,
  namespaces: NsSpec[] = NAMESPACES,
): Promise<Built> {
  const dir = await cacheDir(containerdVersion, namespaces);
  const started = performance.now();
  const index = await readIndex(dir);
  const now = Date.now() / 1000;
  const removalTars = new Map(namespaces.map((s) => [s.ns, join(dir, `removal-${s.short}.tar`)]));
  if (
    index !== null && index.snapshotter === c.snapshotter &&
    now - index.builtAt < CACHE_MAX_AGE_SECONDS
  ) {
    log(`restoring the cached image store from ${dir}`);
    await c.stopDaemon();
    await Deno.remove(join(c.dir, "root"), { recursive: true });
    await run("cp", ["-a", join(dir, "root"), join(c.dir, "root")]);
    await c.startDaemon();
    return {
      dir,
      images: index.images,
      removalTars,
      fresh: false,
      buildSeconds: (performance.now() - started) / 1000,
    };
  }
  log(`building the image store (cached in ${dir} for later runs)`);
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
  const planned = plannedImages(namespaces);
  const images: BenchImage[] = [];
  for (const s of namespaces) {
    const mine = planned.filter((p) => p.ns === s.ns);
    const entries = mine.flatMap((p) =>
      p.refs.map((ref) => ({ ref, variant: `${p.ns}/${p.category}-${p.index}` }))
    );
    const set = await buildOciImageSet(entries);
    const byRef = new Map(set.images.map((i) => [i.ref, i]));
    for (const p of mine) {
      const built = byRef.get(p.refs[0]!)!;
      images.push({ ...p, digest: built.digest, config: built.config });
    }
    const tar = join(c.dir, `import-${s.short}.tar`);
    await Deno.writeFile(tar, set.tar);
    const t = performance.now();
    // Thousands of refs in one import outlast the harness's 60 s ctr timeout on a busy machine.
    const r = await c.ctrRaw(["-n", s.ns, "image", "import", tar], IMPORT_TIMEOUT_MS);
    if (r.code !== 0) throw new Error(`ctr image import into ${s.ns} exited with ${r.code}`);
    await Deno.remove(tar);
    log(
      `  imported ${entries.length} refs into ${s.ns} in ${
        ((performance.now() - t) / 1000).toFixed(1)
      } s`,
    );
  }
  for (const im of images.filter((i) => i.category === "pinned")) {
    await c.label(im.ns, im.refs[0]!, "io.cri-containerd.pinned=pinned");
  }
  for (const s of namespaces) {
    const old = images.filter((i) => i.ns === s.ns && i.category !== "young");
    await c.ageContent(s.ns, old.flatMap((i) => [i.digest, i.config]), AGED_SECONDS);
  }
  // The removal sets, as tarballs of the same images (same digests), for re-importing.
  for (const [ns, set] of removalSet(images, namespaces)) {
    const built = await buildOciImageSet(
      set.map((i) => ({ ref: i.refs[0]!, variant: `${i.ns}/${i.category}-${i.index}` })),
    );
    await Deno.writeFile(removalTars.get(ns)!, built.tar);
  }
  await c.stopDaemon();
  await run("cp", ["-a", join(c.dir, "root"), join(dir, "root")]);
  await c.startDaemon();
  const written: CacheIndex = { builtAt: now, snapshotter: c.snapshotter, images };
  await Deno.writeTextFile(join(dir, "index.json"), JSON.stringify(written));
  return {
    dir,
    images,
    removalTars,
    fresh: true,
    buildSeconds: (performance.now() - started) / 1000,
  };
}

// ---------------------------------------------------------------------------------------------
// Containers.

const CREATE_CONCURRENCY = 4;

function labelArgs(labels: Record<string, string>): string[] {
  return Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
}

/** Waits until every container of `want` has a task in `status`. */
async function waitAll(
  c: TestContainerd,
  want: BenchContainer[],
  status: string,
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const ns of new Set(want.map((w) => w.ns))) {
    const ids = want.filter((w) => w.ns === ns).map((w) => w.id);
    if (ids.length === 0) continue;
    for (;;) {
      const tasks = await c.taskStatuses(ns);
      const late = ids.filter((id) => tasks.get(id) !== status);
      if (late.length === 0) break;
      if (Date.now() > deadline) {
        throw new Error(`tasks not ${status} after ${timeoutMs} ms: ${late.slice(0, 5)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Creates `containers` as the harness does (runc root, fifo dir and cgroup inside its temp dir,
 * so its cleanup finds them), with their labels: running ones run `sleep`, stopped ones ran
 * `true` and their task is STOPPED, created ones have no task.
 */
export async function createContainers(
  c: TestContainerd,
  containers: BenchContainer[],
): Promise<void> {
  await mapLimit(containers, CREATE_CONCURRENCY, async (k) => {
    if (k.kind === "created") {
      await c.ctrOk([
        "-n",
        k.ns,
        "container",
        "create",
        ...labelArgs(k.labels),
        k.ref,
        k.id,
        "sleep",
        "100000",
      ]);
      return;
    }
    await c.ctrOk([
      "-n",
      k.ns,
      "run",
      "-d",
      "--runc-root",
      c.runcRoot,
      "--fifo-dir",
      c.fifoDir,
      "--cgroup",
      c.cgroupPath(k.ns, k.id),
      ...labelArgs(k.labels),
      k.ref,
      k.id,
      ...(k.kind === "running" ? ["sleep", "100000"] : ["true"]),
    ]);
  });
  await waitAll(c, containers.filter((k) => k.kind === "running"), "RUNNING");
  await waitAll(c, containers.filter((k) => k.kind === "stopped"), "STOPPED");
}

/** Removes and creates again the `created` containers, so they are fresh (< 5 min old). */
export async function refreshCreated(
  c: TestContainerd,
  containers: BenchContainer[],
): Promise<void> {
  const created = containers.filter((k) => k.kind === "created");
  for (const ns of new Set(containers.map((k) => k.ns))) {
    const ids = created.filter((k) => k.ns === ns).map((k) => k.id);
    const present = new Set(await listIds(c, ns, "container"));
    const old = ids.filter((id) => present.has(id));
    if (old.length) await c.ctrOk(["-n", ns, "container", "rm", ...old]);
  }
  await createContainers(c, created);
}

/** `ctr -n ns <what> ls -q`, sorted. */
export async function listIds(
  c: TestContainerd,
  ns: string,
  what: "container" | "image",
): Promise<string[]> {
  const out = await c.ctrOk(["-n", ns, what, "ls", "-q"]);
  return out.split("\n").map((l) => l.trim()).filter((l) => l !== "").sort();
}

// ---------------------------------------------------------------------------------------------
// Multi-layer images that share no layer, for the second removal comparison.

/** Two-layer images per namespace whose layers are all their own (no layer shared). */
export const LAYERED_PER_NS = 20;

/** The refs of the layered images of `s`. */
export function layeredRefs(s: NsSpec): string[] {
  return Array.from(
    { length: LAYERED_PER_NS },
    (_, i) => `registry.example/bench/${s.short}/layered-${i}:1`,
  );
}

/**
 * One OCI image-layout tarball of two-layer images (tests/support/oci_image.ts's `layers: 2`):
 * each has its own busybox layer (its `/variant` differs) and its own second layer, so one
 * import unpacks two snapshots per image and removing an image frees them.
 */
export async function buildLayeredSet(
  refs: string[],
): Promise<{ images: { ref: string; digest: string }[]; tar: Uint8Array }> {
  const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  const blobs = new Map<string, Uint8Array>();
  const images: { ref: string; digest: string }[] = [];
  const manifests: unknown[] = [];
  for (const ref of refs) {
    const im = await buildOciImage(ref, `layered ${ref}`, { layers: 2 });
    for (const b of [im.manifest, im.config, ...im.layers]) blobs.set(b.digest, b.bytes);
    images.push({ ref, digest: im.manifest.digest });
    manifests.push({
      mediaType: MEDIA_TYPE_MANIFEST,
      digest: im.manifest.digest,
      size: im.manifest.size,
      annotations: {
        "io.containerd.image.name": ref,
        "org.opencontainers.image.ref.name": ref.slice(ref.lastIndexOf(":") + 1),
      },
    });
  }
  const tar = writeTar([
    { type: "file", name: "oci-layout", data: json({ imageLayoutVersion: "1.0.0" }) },
    { type: "file", name: "index.json", data: json({ schemaVersion: 2, manifests }) },
    { type: "dir", name: "blobs/" },
    { type: "dir", name: "blobs/sha256/" },
    ...[...blobs].map(([digest, data]) => ({
      type: "file" as const,
      name: `blobs/sha256/${digest.slice("sha256:".length)}`,
      data,
    })),
  ]);
  return { images, tar };
}
