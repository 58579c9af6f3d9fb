/**
 * A private containerd for end-to-end tests: its own temp dir (root, state, sockets, runc root),
 * never the system's /var/lib/containerd, /run/containerd/containerd.sock or runc root.
 *
 *   await withContainerd(async (c) => {
 *     const digest = await c.importImage("default", "docker.io/library/a:1", "one");
 *     await c.run("default", "docker.io/library/a:1", "c1");
 *     const out = await c.ctrOk(["-n", "default", "image", "ls"]);
 *   });
 *
 * Needs root, `containerd`, `ctr`, `runc`, `containerd-shim-runc-v2` on PATH, /bin/busybox, and
 * ({@linkcode TestContainerd.ageContent} rewrites the bolt DB itself: tests/support/bolt_stamp.ts).
 * containerd, ctr and the shim must be the version `CTRE_TEST_CONTAINERD` names (default 1.6.20;
 * scripts/test.sh puts that version's bin dir first on PATH): {@linkcode TestContainerd.start}
 * checks it once per process and throws otherwise.
 *
 * What stays outside the temp dir: the shims' sockets in /run/containerd/s/ (containerd 1.6 to
 * 2.1 hard-code that dir; they are named by a hash of our socket path, so they never collide, and
 * cleanup removes those of shims it kills, see {@linkcode shimSocketsOf}) and cgroups, which {@linkcode TestContainerd.run}
 * puts under `/<temp dir name>/<ns>/<id>` in every hierarchy and cleanup removes.
 *
 * Deno refuses to read /proc and /sys without --allow-all, so process, mount and cgroup checks
 * shell out to `cat`, `ps`, `find`, `rmdir`, `umount`: this module needs --allow-read,
 * --allow-write, --allow-run and --allow-env, nothing more.
 *
 * @module
 */

import { backdate } from "./bolt_stamp.ts";
import { buildOciImage } from "./oci_image.ts";

/** Exit code and decoded output of one `ctr` run. */
export interface CtrResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Exit code and raw output of one `ctr` run (for byte-exact fixtures). */
export interface CtrRawResult {
  code: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
}

/** Options of {@linkcode TestContainerd.start}. */
export interface StartOptions {
  /** containerd's root on a tmpfs of this size (e.g. "64m"). */
  rootSize?: string;
  /**
   * containerd's root (and nothing else) on a loop-mounted ext4 of this size (e.g. "400M"), so
   * statfs of the root moves only with containerd. The image file lives in the temp dir; cleanup
   * unmounts it (the loop device goes with it, `-o loop` sets autoclear).
   */
  rootExt4?: string;
  /**
   * Enables the CRI plugin (disabled otherwise) and appends this TOML to config.toml (see
   * tests/support/cri.ts, which builds it for the running containerd version).
   */
  criConfig?: (c: TestContainerd) => string;
}

/** Prefix of every temp dir the harness makes (the dir's name is also its cgroup parent). */
export const TEMP_PREFIX = "ctre-e2e-";

const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 15_000;
const CTR_TIMEOUT_MS = 60_000;
/** Longest socket path we accept (sun_path is 108 bytes, containerd also makes `<sock>.ttrpc`). */
const MAX_SOCKET_PATH = 100;

const decoder = new TextDecoder();

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * An AbortSignal that fires after `ms`, and the function that clears its timer. Unlike
 * AbortSignal.timeout, whose timer outlives the call it guards, this leaves no timer behind, so
 * tests using the harness can keep Deno's op sanitizer on.
 */
function deadline(ms: number): { signal: AbortSignal; clear: () => void } {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new DOMException("timed out", "TimeoutError")), ms);
  return { signal: ac.signal, clear: () => clearTimeout(timer) };
}

/** The non-empty trimmed lines of `text`, sorted. */
function lines(text: string): string[] {
  return text.split("\n").map((l) => l.trim()).filter((l) => l !== "").sort();
}

/** Quotes a string as a TOML basic string. */
function toml(value: string): string {
  return JSON.stringify(value);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function readText(path: string): Promise<string | undefined> {
  // Not for /proc or /sys: Deno requires --allow-all for those.
  try {
    return await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
}

async function tail(path: string, lines = 30): Promise<string> {
  const text = await readText(path);
  if (text === undefined) return `(no ${path})`;
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Runs a command to completion, never throws (code -1 if it could not be started). */
async function runQuiet(cmd: string, args: string[], timeoutMs = 30_000): Promise<CtrResult> {
  const limit = deadline(timeoutMs);
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: limit.signal,
    }).output();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } catch (e) {
    return { code: -1, stdout: "", stderr: errorMessage(e) };
  } finally {
    limit.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// /proc and cgroup helpers (also used by tests to prove cleanup left nothing behind).
//
// Deno refuses to read /proc and /sys without --allow-all, even with --allow-read, so these
// run `cat`, `ps`, `find` and `rmdir` instead: the tests only need --allow-run.

/** Decodes the octal escapes (`\040`) of /proc/self/mountinfo fields. */
function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parsed /proc/self/mountinfo: mount point and filesystem type, in mount order. */
async function mountTable(): Promise<{ point: string; fsType: string }[]> {
  const r = await runQuiet("cat", ["/proc/self/mountinfo"]);
  if (r.code !== 0) throw new Error(`cannot read /proc/self/mountinfo: ${r.stderr.trim()}`);
  const out: { point: string; fsType: string }[] = [];
  for (const line of r.stdout.split("\n")) {
    const point = line.split(" ")[4];
    const sep = line.indexOf(" - ");
    if (point === undefined || sep < 0) continue;
    out.push({ point: unescapeMount(point), fsType: line.slice(sep + 3).split(" ")[0] ?? "" });
  }
  return out;
}

/** Mount points at or under `dir`, in /proc/self/mountinfo order (parents before children). */
export async function mountsUnder(dir: string): Promise<string[]> {
  return (await mountTable())
    .map((m) => m.point)
    .filter((point) => point === dir || point.startsWith(dir + "/"));
}

/** The cgroup hierarchy roots: /sys/fs/cgroup (v2) or /sys/fs/cgroup/<controller> (v1, hybrid). */
async function cgroupRoots(): Promise<string[]> {
  const roots = (await mountTable())
    .filter((m) => m.fsType === "cgroup" || m.fsType === "cgroup2")
    .map((m) => m.point);
  return [...new Set(roots)];
}

/** The cgroup dirs (one per hierarchy) a TestContainerd in `dir` puts its containers under. */
export async function cgroupDirsOf(dir: string): Promise<string[]> {
  const name = dir.slice(dir.lastIndexOf("/") + 1);
  const roots = await cgroupRoots();
  if (roots.length === 0) return [];
  const args = [...roots, "-mindepth", "1", "-maxdepth", "1", "-type", "d", "-name", name];
  const r = await runQuiet("find", args);
  if (r.code !== 0) {
    throw new Error(`find ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
  }
  return r.stdout.split("\n").filter((s) => s !== "");
}

/** A live (non-zombie) process. */
export interface ProcInfo {
  pid: number;
  /** ps STAT (R, S, D, T, ... never Z). */
  stat: string;
  args: string;
}

/** Live processes, from `ps`. */
async function processTable(): Promise<ProcInfo[]> {
  const r = await runQuiet("ps", ["-e", "-ww", "-o", "pid=,stat=,args="]);
  if (r.code !== 0) throw new Error(`ps failed: ${r.stderr.trim()}`);
  const out: ProcInfo[] = [];
  for (const line of r.stdout.split("\n")) {
    const m = /^\s*(\d+)\s+(\S+)\s?(.*)$/.exec(line);
    if (!m || m[1] === undefined || m[2] === undefined) continue;
    if (m[2].startsWith("Z") || m[2].startsWith("X")) continue;
    out.push({ pid: Number(m[1]), stat: m[2], args: m[3] ?? "" });
  }
  return out;
}

/** Pids in the cgroups under `cgroupDirs` (all hierarchies, all depths). */
async function pidsInCgroups(cgroupDirs: string[]): Promise<Set<number>> {
  const pids = new Set<number>();
  if (cgroupDirs.length === 0) return pids;
  const r = await runQuiet("find", [
    ...cgroupDirs,
    "-name",
    "cgroup.procs",
    "-exec",
    "cat",
    "{}",
    "+",
  ]);
  for (const s of r.stdout.split("\n")) if (/^\d+$/.test(s)) pids.add(Number(s));
  return pids;
}

/**
 * Live processes that belong to the TestContainerd in `dir`: whose command line mentions `dir`
 * (containerd, shims, ctr) or that sit in its cgroups (the containers' processes, which do not
 * name the dir). Never this process.
 */
export async function processesReferencing(dir: string): Promise<ProcInfo[]> {
  const inCgroups = await pidsInCgroups(await cgroupDirsOf(dir));
  return (await processTable()).filter((p) =>
    p.pid !== Deno.pid &&
    (p.args.includes(dir) || inCgroups.has(p.pid)) &&
    // `ps`, `find` and `cat` run by this module mention the dir themselves
    !/^(ps|find|cat) /.test(p.args)
  );
}

/**
 * The shim sockets (in /run/containerd/s/) of the tasks of the TestContainerd in `dir`, read from
 * each task's state dir: 1.6 and 1.7 shims write `address` (`unix:///run/containerd/s/<hash>`),
 * 2.x shims write `bootstrap.json` instead (`{"version":3,"address":"unix://…","protocol":"ttrpc"}`).
 */
export async function shimSocketsOf(dir: string): Promise<string[]> {
  const sockets: string[] = [];
  const tasksDir = `${dir}/state/io.containerd.runtime.v2.task`;
  for (const ns of await Array.fromAsync(Deno.readDir(tasksDir)).catch(() => [])) {
    const nsDir = `${tasksDir}/${ns.name}`;
    for (const id of await Array.fromAsync(Deno.readDir(nsDir)).catch(() => [])) {
      let address = (await readText(`${nsDir}/${id.name}/address`))?.trim();
      const bootstrap = await readText(`${nsDir}/${id.name}/bootstrap.json`);
      if (address === undefined && bootstrap !== undefined) {
        try {
          const parsed: unknown = JSON.parse(bootstrap);
          if (typeof parsed === "object" && parsed !== null && "address" in parsed) {
            address = String(parsed.address);
          }
        } catch {
          // half-written: the process scan still kills the shim
        }
      }
      if (address?.startsWith("unix://")) sockets.push(address.slice("unix://".length));
    }
  }
  return sockets;
}

// ---------------------------------------------------------------------------------------------
// Which containerd: scripts/test.sh puts the chosen version's binaries first on PATH and sets
// CTRE_TEST_CONTAINERD; the harness refuses to run on anything else.

/** The containerd versions the tests run on (scripts/containerd_bin.sh fetches them). */
export const SUPPORTED_TEST_VERSIONS = ["1.6.20", "1.7.24", "2.1.9"] as const;

/** The version asked for: `CTRE_TEST_CONTAINERD`, default `1.6.20` (Debian 12's package). */
export function wantedContainerdVersion(): string {
  return Deno.env.get("CTRE_TEST_CONTAINERD") || "1.6.20";
}

/** `"2.1"` for `"2.1.9"`: the fixture dir suffix (tests/testdata/ctr-<minor>). */
export function minorOf(version: string): string {
  return version.split(".").slice(0, 2).join(".");
}

let versionCheck: Promise<string> | undefined;

/**
 * Checks once per process that `containerd`, `ctr` and `containerd-shim-runc-v2` on PATH are all
 * {@linkcode wantedContainerdVersion}; returns it, or throws saying what was found instead.
 * {@linkcode TestContainerd.start} calls it: a run never silently tests another version.
 */
export function checkContainerdVersion(): Promise<string> {
  versionCheck ??= (async () => {
    const wanted = wantedContainerdVersion();
    if (!(SUPPORTED_TEST_VERSIONS as readonly string[]).includes(wanted)) {
      throw new Error(
        `CTRE_TEST_CONTAINERD="${wanted}" is not one of ${SUPPORTED_TEST_VERSIONS.join(", ")}`,
      );
    }
    // " 2.1.9+unknown", " 1.7.24~ds1", "Version:  1.6.20~ds1": the version as a whole token.
    const token = new RegExp(`(^|\\s)v?${wanted.replaceAll(".", "\\.")}([~+\\s-]|$)`, "m");
    const probes: [string, string[]][] = [
      ["containerd", ["--version"]],
      ["ctr", ["--version"]],
      ["containerd-shim-runc-v2", ["-v"]],
    ];
    for (const [cmd, args] of probes) {
      const r = await runQuiet(cmd, args);
      const said = (r.stdout + r.stderr).trim();
      if (r.code !== 0 || !token.test(said)) {
        throw new Error(
          `the tests asked for containerd ${wanted} (CTRE_TEST_CONTAINERD) but \`${cmd} ` +
            `${args.join(" ")}\` on PATH says: ${said || `(exit ${r.code})`}. Run the tests with ` +
            "scripts/test.sh, or put `bash scripts/containerd_bin.sh VERSION` first on PATH",
        );
      }
    }
    return wanted;
  })();
  return versionCheck;
}

// ---------------------------------------------------------------------------------------------

/** A containerd of its own in a temp dir. Create with {@linkcode TestContainerd.start}. */
export class TestContainerd {
  /** Temp dir holding root/, state/, the sockets, config.toml, runc-root/, fifo/, containerd.log. */
  readonly dir: string;
  /** containerd's gRPC socket path. */
  readonly address: string;
  #snapshotter = "overlayfs";
  #child: Deno.ChildProcess | undefined;
  #status: Promise<Deno.CommandStatus> | undefined;
  #imports = 0;
  #criConfig: ((c: TestContainerd) => string) | undefined;

  private constructor(dir: string) {
    this.dir = dir;
    this.address = `${dir}/containerd.sock`;
  }

  get configPath(): string {
    return `${this.dir}/config.toml`;
  }
  get logPath(): string {
    return `${this.dir}/containerd.log`;
  }
  get runcRoot(): string {
    return `${this.dir}/runc-root`;
  }
  get fifoDir(): string {
    return `${this.dir}/fifo`;
  }
  /** containerd's metadata DB (only safe to touch while the daemon is stopped). */
  get metaDb(): string {
    return `${this.dir}/root/io.containerd.metadata.v1.bolt/meta.db`;
  }
  /** cgroup path (as in the OCI spec) of container `id` in namespace `ns`. */
  cgroupPath(ns: string, id: string): string {
    return `/${this.dir.slice(this.dir.lastIndexOf("/") + 1)}/${ns}/${id}`;
  }
  /**
   * The snapshotter in use: `overlayfs`, or `native` where containerd's overlayfs plugin does not
   * load (it test-mounts overlay at startup). {@linkcode ctr} passes it as CONTAINERD_SNAPSHOTTER.
   */
  get snapshotter(): string {
    return this.#snapshotter;
  }
  /** Whether containerd (started by this object) is running. */
  get running(): boolean {
    return this.#child !== undefined;
  }

  /**
   * Makes a temp dir, writes config.toml, starts containerd and waits until it answers.
   * Set `CTRE_E2E_SNAPSHOTTER=native` to force the native snapshotter. With `rootSize` (e.g.
   * "64m"), containerd's root is a tmpfs of that size, so disk pressure is real and measurable.
   */
  static async start(opts: StartOptions = {}): Promise<TestContainerd> {
    await checkContainerdVersion();
    let dir = await Deno.makeTempDir({ prefix: TEMP_PREFIX });
    if (`${dir}/containerd.sock.ttrpc`.length > MAX_SOCKET_PATH) {
      await Deno.remove(dir);
      dir = await Deno.makeTempDir({ dir: "/tmp", prefix: TEMP_PREFIX });
    }
    const c = new TestContainerd(dir);
    c.#criConfig = opts.criConfig;
    try {
      for (const sub of ["root", "state", "runc-root", "fifo", "opt"]) {
        await Deno.mkdir(`${dir}/${sub}`, { mode: 0o711 });
      }
      if (opts.rootSize !== undefined) {
        const r = await runQuiet("mount", [
          "-t",
          "tmpfs",
          "-o",
          `size=${opts.rootSize},mode=0711`,
          "ctre-e2e-root",
          `${dir}/root`,
        ]);
        if (r.code !== 0) throw new Error(`cannot mount a tmpfs root: ${r.stderr.trim()}`);
      }
      if (opts.rootExt4 !== undefined) {
        await mountExt4(`${dir}/root.ext4`, opts.rootExt4, `${dir}/root`);
      }
      await Deno.writeTextFile(c.configPath, c.config());
      await c.startDaemon();
      const wanted = Deno.env.get("CTRE_E2E_SNAPSHOTTER");
      c.#snapshotter = wanted ?? (await c.#overlayfsWorks() ? "overlayfs" : "native");
      // ctre's ctr processes (the CLI under test) inherit it, as on a node where the operator
      // sets it for ctre: prune's content guard lists that snapshotter's snapshots.
      Deno.env.set("CONTAINERD_SNAPSHOTTER", c.#snapshotter);
    } catch (e) {
      await c.cleanup();
      throw e;
    }
    return c;
  }

  /** The config.toml this instance runs with. */
  config(): string {
    const d = this.dir;
    return [
      "version = 2",
      `root = ${toml(`${d}/root`)}`,
      `state = ${toml(`${d}/state`)}`,
      "oom_score = 0",
      "disabled_plugins = [",
      this.#criConfig === undefined
        ? '  "io.containerd.grpc.v1.cri",'
        : '  "io.containerd.nri.v1.nri",',
      '  "io.containerd.snapshotter.v1.aufs",',
      '  "io.containerd.snapshotter.v1.btrfs",',
      '  "io.containerd.snapshotter.v1.devmapper",',
      '  "io.containerd.snapshotter.v1.zfs",',
      '  "io.containerd.tracing.processor.v1.otlp",',
      '  "io.containerd.internal.v1.tracing",',
      "]",
      "",
      "[grpc]",
      `  address = ${toml(this.address)}`,
      '  tcp_address = ""',
      "",
      "[ttrpc]",
      `  address = ${toml(`${this.address}.ttrpc`)}`,
      "",
      "[debug]",
      '  address = ""',
      '  level = "info"',
      "",
      "[metrics]",
      '  address = ""',
      "",
      "[plugins]",
      '  [plugins."io.containerd.internal.v1.opt"]',
      `    path = ${toml(`${d}/opt`)}`,
      // The v1 runtime must stay enabled (1.6's tasks service needs it); keep it off /run.
      '  [plugins."io.containerd.runtime.v1.linux"]',
      `    runtime_root = ${toml(this.runcRoot)}`,
      "",
      ...(this.#criConfig === undefined ? [] : [this.#criConfig(this)]),
    ].join("\n");
  }

  /** Starts containerd on this dir (again) and waits until `ctr version` answers. */
  async startDaemon(): Promise<void> {
    if (this.#child !== undefined) return;
    // sh execs containerd with stdout/stderr appended to the log: same pid, no pipes to drain.
    const child = new Deno.Command("sh", {
      args: [
        "-c",
        'exec "$0" --config "$1" >>"$2" 2>&1',
        "containerd",
        this.configPath,
        this.logPath,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.#child = child;
    let exited = false;
    this.#status = child.status.finally(() => {
      exited = true;
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    let last = "";
    while (true) {
      if (exited) {
        const status = await this.#status;
        this.#child = undefined;
        this.#status = undefined;
        throw new Error(
          `containerd exited with code ${status.code} while starting. Log tail:\n` +
            await tail(this.logPath),
        );
      }
      if (await exists(this.address)) {
        const r = await runQuiet("ctr", [
          "--address",
          this.address,
          "--connect-timeout",
          "2s",
          "version",
        ]);
        if (r.code === 0) return;
        last = r.stderr.trim();
      }
      if (Date.now() > deadline) {
        await this.stopDaemon();
        throw new Error(
          `containerd did not answer within ${START_TIMEOUT_MS / 1000}s (${last}). Log tail:\n` +
            await tail(this.logPath),
        );
      }
      await sleep(50);
    }
  }

  /** SIGTERM containerd and wait for it to exit (SIGKILL after 15 s). Keeps the dir. */
  async stopDaemon(): Promise<void> {
    const child = this.#child;
    const status = this.#status;
    if (child === undefined || status === undefined) return;
    try {
      child.kill("SIGTERM");
    } catch {
      // already exited
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), STOP_TIMEOUT_MS);
    });
    const first = await Promise.race([status, timeout]);
    clearTimeout(timer);
    if (first === "timeout") {
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await status;
    }
    this.#child = undefined;
    this.#status = undefined;
  }

  async #overlayfsWorks(): Promise<boolean> {
    const r = await this.ctr(["plugins", "ls", "type==io.containerd.snapshotter.v1"]);
    return r.stdout.split("\n").some((line) => {
      const cells = line.trim().split(/\s+/);
      return cells[1] === "overlayfs" && cells[cells.length - 1] === "ok";
    });
  }

  /** Runs `ctr --address <address> ...args`, raw bytes. */
  async ctrRaw(args: string[], timeoutMs = CTR_TIMEOUT_MS): Promise<CtrRawResult> {
    const limit = deadline(timeoutMs);
    const out = await new Deno.Command("ctr", {
      args: ["--address", this.address, ...args],
      env: { CONTAINERD_SNAPSHOTTER: this.snapshotter },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: limit.signal,
    }).output().finally(limit.clear);
    return { code: out.code, stdout: out.stdout, stderr: out.stderr };
  }

  /** Runs `ctr --address <address> ...args`. */
  async ctr(args: string[]): Promise<CtrResult> {
    const out = await this.ctrRaw(args);
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  }

  /** Like {@linkcode ctr}, but throws unless the exit code is 0; returns stdout. */
  async ctrOk(args: string[]): Promise<string> {
    const r = await this.ctr(args);
    if (r.code !== 0) {
      throw new Error(`ctr ${args.join(" ")} exited with ${r.code}: ${r.stderr.trim()}`);
    }
    return r.stdout;
  }

  /**
   * Builds a busybox image offline (see oci_image.ts), imports it into `ns` as `ref` (unpacked
   * into the snapshotter unless `opts.unpack` is false: `--no-unpack`, so its layer blobs are
   * its only copy), tags it with `extraRefs`, and returns its target (manifest) digest.
   * `opts.layers: 2` builds a two-layer image.
   */
  async importImage(
    ns: string,
    ref: string,
    variant: string,
    extraRefs: string[] = [],
    opts: { unpack?: boolean; layers?: 1 | 2 } = {},
  ): Promise<string> {
    const image = await buildOciImage(ref, variant, opts.layers ? { layers: opts.layers } : {});
    const tar = `${this.dir}/import-${++this.#imports}.tar`;
    await Deno.writeFile(tar, image.tar);
    try {
      await this.ctrOk([
        "-n",
        ns,
        "image",
        "import",
        ...(opts.unpack === false ? ["--no-unpack"] : []),
        tar,
      ]);
    } finally {
      await Deno.remove(tar).catch(() => {});
    }
    const listed = await this.ctrOk(["-n", ns, "image", "ls", `name==${ref}`]);
    if (!listed.includes(image.manifest.digest)) {
      throw new Error(
        `imported ${ref} but image ls does not show ${image.manifest.digest}:\n${listed}`,
      );
    }
    if (extraRefs.length > 0) {
      await this.ctrOk(["-n", ns, "image", "tag", ref, ...extraRefs]);
    }
    return image.manifest.digest;
  }

  /**
   * Runs `true` in a throw-away container from `ref` (`ctr run --rm`), unpacking the image first
   * if it is not. Throws with ctr's stderr when the container cannot start or exits non-zero.
   */
  async runOnce(ns: string, ref: string, id: string): Promise<void> {
    await this.ctrOk(["-n", ns, "run", "--rm", ...this.#runFlags(ns, id), ref, id, "true"]);
  }

  #runFlags(ns: string, id: string): string[] {
    return [
      "--runc-root",
      this.runcRoot,
      "--fifo-dir",
      this.fifoDir,
      "--cgroup",
      this.cgroupPath(ns, id),
    ];
  }

  /** Starts container `id` from `ref` running `sleep 100000` (task RUNNING when this returns). */
  async run(ns: string, ref: string, id: string): Promise<void> {
    await this.ctrOk([
      "-n",
      ns,
      "run",
      "-d",
      ...this.#runFlags(ns, id),
      ref,
      id,
      "sleep",
      "100000",
    ]);
    await this.waitTask(ns, id, "RUNNING");
  }

  /**
   * Starts container `id` from a host directory instead of an image (`ctr run --rootfs`: no
   * image, no snapshot), running `sleep 100000` from a copy of the host's busybox; returns that
   * directory. The task is RUNNING when this returns.
   */
  async runRootfs(ns: string, id: string): Promise<string> {
    const rootfs = `${this.dir}/rootfs-${ns}-${id}`;
    await Deno.mkdir(`${rootfs}/bin`, { recursive: true });
    await Deno.copyFile("/bin/busybox", `${rootfs}/bin/busybox`);
    await Deno.chmod(`${rootfs}/bin/busybox`, 0o755);
    for (const link of ["sh", "sleep", "true"]) {
      await Deno.symlink("busybox", `${rootfs}/bin/${link}`);
    }
    await this.ctrOk([
      "-n",
      ns,
      "run",
      "-d",
      "--rootfs",
      ...this.#runFlags(ns, id),
      rootfs,
      id,
      "/bin/sleep", // no image config: no PATH
      "100000",
    ]);
    await this.waitTask(ns, id, "RUNNING");
    return rootfs;
  }

  /** Starts container `id` running `true` and waits until its task is STOPPED (not deleted). */
  async runToExit(ns: string, ref: string, id: string): Promise<void> {
    await this.ctrOk(["-n", ns, "run", "-d", ...this.#runFlags(ns, id), ref, id, "true"]);
    await this.waitTask(ns, id, "STOPPED");
  }

  /**
   * Creates container `id` from `ref` without a task (`ctr container create`). That command has
   * no --runc-root/--cgroup flags, so such a container carries no runc options: do not start it.
   */
  async create(ns: string, ref: string, id: string): Promise<void> {
    await this.ctrOk(["-n", ns, "container", "create", ref, id, "sleep", "100000"]);
  }

  /** The refs of `ns` (`ctr image ls -q`), sorted. */
  async imageRefs(ns: string): Promise<string[]> {
    return lines(await this.ctrOk(["-n", ns, "image", "ls", "-q"]));
  }

  /** The container ids of `ns` (`ctr container ls -q`), sorted. */
  async containerIds(ns: string): Promise<string[]> {
    return lines(await this.ctrOk(["-n", ns, "container", "ls", "-q"]));
  }

  /** `ctr -n ns image label ref kv` (kv is `key=value`, or `key=` to remove the label). */
  async label(ns: string, ref: string, kv: string): Promise<void> {
    await this.ctrOk(["-n", ns, "image", "label", ref, kv]);
  }

  /** Task statuses of `ns` by container id, from `ctr task ls`. */
  async taskStatuses(ns: string): Promise<Map<string, string>> {
    const out = await this.ctrOk(["-n", ns, "task", "ls"]);
    const tasks = new Map<string, string>();
    for (const line of out.split("\n").slice(1)) {
      const [id, _pid, status] = line.trim().split(/\s+/);
      if (id && status) tasks.set(id, status);
    }
    return tasks;
  }

  /** Waits (up to 10 s) until the task of `id` has `status`. */
  async waitTask(ns: string, id: string, status: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let seen: string | undefined;
    while (true) {
      seen = (await this.taskStatuses(ns)).get(id);
      if (seen === status) return;
      if (Date.now() > deadline) {
        throw new Error(
          `task ${ns}/${id} is ${seen ?? "absent"}, not ${status}, after ${timeoutMs} ms`,
        );
      }
      await sleep(50);
    }
  }

  /**
   * Backdates blobs: stops containerd, sets createdat/updatedat of `digests` in namespace `ns`
   * to now - ageSeconds in the bolt DB, starts containerd again.
   */
  async ageContent(ns: string, digests: string[], ageSeconds: number): Promise<void> {
    await this.stopDaemon();
    try {
      await backdate(this.metaDb, ns, "content", digests, ageSeconds);
    } finally {
      await this.startDaemon();
    }
  }

  /**
   * Removes everything: deletes all tasks, stops containerd, kills leftover shims and container
   * processes, unmounts everything under the dir, removes cgroups and the dir. Never throws;
   * may be called more than once.
   */
  async cleanup(): Promise<void> {
    const step = async (what: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (e) {
        // deno-lint-ignore no-console
        console.error(`TestContainerd.cleanup(${this.dir}): ${what}: ${errorMessage(e)}`);
      }
    };
    await step("delete tasks", () => this.#deleteAllTasks());
    await step("stop containerd", () => this.stopDaemon());
    await step("kill processes", () => this.#killLeftovers());
    await step("unmount", () => this.#unmountAll());
    await step("remove cgroups", () => this.#removeCgroups());
    await step("remove dir", async () => {
      for (let attempt = 0;; attempt++) {
        try {
          await Deno.remove(this.dir, { recursive: true });
          return;
        } catch (e) {
          if (e instanceof Deno.errors.NotFound) return;
          if (attempt >= 5) throw e;
          await this.#unmountAll();
          await sleep(200);
        }
      }
    });
  }

  async #deleteAllTasks(): Promise<void> {
    if (this.#child === undefined) return;
    const nsList = await this.ctr(["namespace", "ls", "-q"]);
    if (nsList.code !== 0) return;
    for (const ns of nsList.stdout.split("\n").filter((s) => s !== "")) {
      const tasks = await this.ctr(["-n", ns, "task", "ls", "-q"]);
      for (const id of tasks.stdout.split("\n").filter((s) => s !== "")) {
        await this.ctr(["-n", ns, "task", "kill", "-a", "-s", "SIGKILL", id]);
        // `task rm -f` kills what is left, waits, and deletes: runc removes the cgroup and the
        // shim unmounts the rootfs and exits.
        await this.ctr(["-n", ns, "task", "rm", "-f", id]);
      }
    }
  }

  async #killLeftovers(): Promise<void> {
    const sockets = await shimSocketsOf(this.dir);
    for (let round = 0; round < 20; round++) {
      const procs = await processesReferencing(this.dir);
      if (procs.length === 0) break;
      for (const p of procs) {
        try {
          Deno.kill(p.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      await sleep(50 * (round + 1));
    }
    const stale = sockets.filter((s) => s.startsWith("/run/containerd/s/"));
    if (stale.length > 0) await runQuiet("rm", ["-f", ...stale]);
  }

  async #unmountAll(): Promise<void> {
    for (let round = 0; round < 5; round++) {
      const mounts = await mountsUnder(this.dir);
      if (mounts.length === 0) return;
      // Deepest first; among equals, the later (upper) mount first.
      const ordered = mounts
        .map((m, i) => ({ m, i, depth: m.split("/").length }))
        .sort((a, b) => b.depth - a.depth || b.i - a.i);
      for (const { m } of ordered) await runQuiet("umount", ["-l", m]);
    }
  }

  async #removeCgroups(): Promise<void> {
    for (let round = 0; round < 10; round++) {
      const dirs = await cgroupDirsOf(this.dir);
      if (dirs.length === 0) return;
      for (const pid of await pidsInCgroups(dirs)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
      // rmdir deepest first; cgroupfs only removes empty cgroups (no processes, no children).
      await runQuiet("find", [...dirs, "-depth", "-type", "d", "-exec", "rmdir", "{}", "+"]);
      await sleep(50 * round);
    }
  }
}

/** Makes an ext4 of `size` in the file `image` and loop-mounts it on `dir` (mode 0711). */
async function mountExt4(image: string, size: string, dir: string): Promise<void> {
  for (
    const [cmd, args] of [
      ["truncate", ["-s", size, image]],
      ["mkfs.ext4", ["-q", "-F", image]],
      ["mount", ["-o", "loop", image, dir]],
      ["chmod", ["0711", dir]],
    ] as const
  ) {
    const r = await runQuiet(cmd, [...args]);
    if (r.code !== 0) throw new Error(`cannot make an ext4 root: ${cmd}: ${r.stderr.trim()}`);
  }
}

/** Starts a TestContainerd, runs `fn` with it, and always cleans up. */
export async function withContainerd(
  fn: (c: TestContainerd) => Promise<void>,
  opts: StartOptions = {},
): Promise<void> {
  const c = await TestContainerd.start(opts);
  try {
    await fn(c);
  } finally {
    await c.cleanup();
  }
}
