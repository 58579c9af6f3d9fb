/**
 * Regenerates tests/testdata/ctr-<major.minor>/ from the REAL containerd on this machine, using
 * the private test containerd of ./containerd.ts. Writes raw ctr stdout byte for byte.
 *
 *   deno run --allow-read --allow-write --allow-run --allow-env tests/support/capture_fixtures.ts \
 *     [--containerd VERSION] [OUT_DIR]
 *
 * VERSION is one of the test versions (1.6.20, 1.7.24, 2.1.9): its binaries (scripts/
 * containerd_bin.sh, fetched when missing) go first on PATH for the capture, so ctr, containerd
 * and the shim all come from that package. Default: CTRE_TEST_CONTAINERD, else 1.6.20. OUT_DIR
 * defaults to tests/testdata/ctr-<major.minor>.
 *
 * Needs root, containerd, ctr, runc, /bin/busybox (aging content: tests/support/bolt_stamp.ts).
 * See tests/testdata/README.md for what each file is.
 *
 * @module
 */

import { TestContainerd, wantedContainerdVersion } from "./containerd.ts";
import { buildOciImage } from "./oci_image.ts";

const APP = "docker.io/library/ctre-app:1.0";
const APP_LATEST = "docker.io/library/ctre-app:latest";
const PINNED = "registry.example.com/team/ctre-pinned:3.9";
const OLD = "docker.io/library/ctre-old:0.1";
const MISSING = "docker.io/library/ctre-missing:1";
const PAUSE = "registry.k8s.io/pause:3.9";
const EVENTS_IMAGE = "docker.io/library/ctre-events:1";

/** 22 days: `ctr content ls` prints "3 weeks". */
const THREE_WEEKS = 22 * 24 * 3600;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function log(message: string): void {
  // deno-lint-ignore no-console
  console.error(message);
}

class Capture {
  constructor(readonly out: string) {}

  async write(name: string, data: Uint8Array | string): Promise<void> {
    await Deno.writeFile(
      `${this.out}/${name}`,
      typeof data === "string" ? encoder.encode(data) : data,
    );
    log(`  wrote ${name}`);
  }

  /** Runs ctr, requires exit 0, saves stdout as `name`. */
  async stdout(c: TestContainerd, name: string, args: string[]): Promise<void> {
    const r = await c.ctrRaw(args);
    if (r.code !== 0) {
      throw new Error(`ctr ${args.join(" ")} exited ${r.code}: ${decoder.decode(r.stderr)}`);
    }
    await this.write(name, r.stdout);
  }

  /** Runs a command, saves `<name>.stdout`, `<name>.stderr` (if wanted) and `<name>.code`. */
  async all(
    name: string,
    cmd: string,
    args: string[],
    parts: ("stdout" | "stderr")[] = ["stdout", "stderr"],
  ): Promise<number> {
    const t0 = performance.now();
    const r = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
      .output();
    const ms = performance.now() - t0;
    if (parts.includes("stdout")) await this.write(`${name}.stdout`, r.stdout);
    if (parts.includes("stderr")) await this.write(`${name}.stderr`, r.stderr);
    await this.write(`${name}.code`, `${r.code}\n`);
    return ms;
  }
}

async function containerdVersion(): Promise<string> {
  const r = await new Deno.Command("containerd", { args: ["--version"], stdout: "piped" }).output();
  return decoder.decode(r.stdout).trim();
}

/** Namespaces default, k8s.io, moby; listings; containers in all states; image rm. */
async function captureListings(cap: Capture): Promise<void> {
  const c = await TestContainerd.start();
  try {
    const ns = ["-n", "default"];
    // default: three images, one with two refs, one pinned, one aged, one with a sha256: ref.
    await c.importImage("default", APP, "app", [APP_LATEST]);
    await c.importImage("default", PINNED, "pinned");
    await c.label("default", PINNED, "io.cri-containerd.pinned=pinned");
    await c.importImage("default", OLD, "old");
    const app = await buildOciImage(APP, "app");
    const old = await buildOciImage(OLD, "old");
    await c.ctrOk([...ns, "image", "tag", OLD, old.config.digest]); // as CRI does in k8s.io
    // A label value with commas, as pulls from several repos of one registry leave.
    await c.ctrOk([
      ...ns,
      "content",
      "label",
      app.layer.digest,
      "containerd.io/distribution.source.docker.io=library/ctre-app,library/ctre-app-mirror",
    ]);
    await c.ageContent(
      "default",
      [old.manifest.digest, old.config.digest, old.layer.digest],
      THREE_WEEKS,
    );

    // k8s.io: a CRI-like image with its sha256:<config> ref and the managed label.
    await c.importImage("k8s.io", PAUSE, "pause");
    const pause = await buildOciImage(PAUSE, "pause");
    await c.ctrOk(["-n", "k8s.io", "image", "tag", PAUSE, pause.config.digest]);
    for (const ref of [PAUSE, pause.config.digest]) {
      await c.label("k8s.io", ref, "io.cri-containerd.image=managed");
    }
    await c.label("k8s.io", PAUSE, "io.cri-containerd.pinned=pinned");

    // moby: dockerd's containers have no image (custom rootfs).
    await Deno.mkdir(`${c.dir}/moby-rootfs`);
    await c.ctrOk([
      "-n",
      "moby",
      "container",
      "create",
      "--rootfs",
      `${c.dir}/moby-rootfs`,
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
      "sh",
    ]);

    // default: one running, one created, one exited container.
    await c.run("default", APP, "ctre-running");
    await c.create("default", PINNED, "ctre-created");
    await c.runToExit("default", OLD, "ctre-exited");

    await cap.stdout(c, "namespace_ls_q.txt", ["namespace", "ls", "-q"]);
    await cap.stdout(c, "namespace_ls.txt", ["namespace", "ls"]);
    await cap.stdout(c, "content_ls.txt", [...ns, "content", "ls"]);
    await cap.stdout(c, "content_ls_q.txt", [...ns, "content", "ls", "-q"]);
    await cap.stdout(c, "image_ls.txt", [...ns, "image", "ls"]);
    await cap.stdout(c, "image_ls_q.txt", [...ns, "image", "ls", "-q"]);
    await cap.stdout(c, "container_ls.txt", [...ns, "container", "ls"]);
    await cap.stdout(c, "container_ls_q.txt", [...ns, "container", "ls", "-q"]);
    await cap.stdout(c, "task_ls.txt", [...ns, "task", "ls"]);
    await cap.stdout(c, "containers_info.txt", [...ns, "containers", "info", "ctre-running"]);
    await cap.stdout(c, "k8s_image_ls.txt", ["-n", "k8s.io", "image", "ls"]);
    await cap.stdout(c, "k8s_content_ls.txt", ["-n", "k8s.io", "content", "ls"]);
    await cap.stdout(c, "moby_container_ls.txt", ["-n", "moby", "container", "ls"]);
    await cap.stdout(c, "moby_containers_info.txt", [
      "-n",
      "moby",
      "containers",
      "info",
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ]);

    await cap.all("image_rm", "ctr", [
      "--address",
      c.address,
      ...ns,
      "image",
      "rm",
      APP_LATEST,
      MISSING,
      OLD,
    ]);
    await cap.all("container_rm_running", "ctr", [
      "--address",
      c.address,
      ...ns,
      "container",
      "rm",
      "ctre-running",
    ]);
  } finally {
    await c.cleanup();
  }
}

/** `ctr event` while an image and a container go through their life; ends with containerd. */
async function captureEvents(cap: Capture): Promise<void> {
  const c = await TestContainerd.start();
  let events: Deno.ChildProcess | undefined;
  try {
    events = new Deno.Command("ctr", {
      args: ["--address", c.address, "event"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = events.output();
    await sleep(500); // let the subscription start
    const ns = ["-n", "default"];
    const id = "ctre-ev";
    await c.importImage("default", EVENTS_IMAGE, "events");
    await c.ctrOk([...ns, "image", "tag", EVENTS_IMAGE, `${EVENTS_IMAGE}-alias`]);
    await c.label("default", EVENTS_IMAGE, "example.com/owner=ctre");
    await c.run("default", EVENTS_IMAGE, id);
    await c.ctrOk([...ns, "task", "exec", "--fifo-dir", c.fifoDir, "--exec-id", "x1", id, "true"]);
    await c.ctrOk([...ns, "task", "kill", "-s", "SIGKILL", id]);
    await c.waitTask("default", id, "STOPPED");
    await c.ctrOk([...ns, "task", "rm", id]);
    await c.ctrOk([...ns, "container", "rm", id]);
    await c.ctrOk([...ns, "image", "rm", `${EVENTS_IMAGE}-alias`]);
    await sleep(500);
    // containerd going away ends the stream: see how ctr event exits.
    await c.stopDaemon();
    const timer = sleep(10_000).then(() => undefined);
    let r = await Promise.race([output, timer]);
    if (r === undefined) {
      events.kill("SIGTERM");
      r = await output;
      log("  ctr event did not exit when containerd stopped; killed it");
    }
    events = undefined;
    await cap.write("events.txt", r.stdout);
    await cap.write("events_end.stderr", r.stderr);
    await cap.write("events_end.code", `${r.code}${r.signal ? ` (signal ${r.signal})` : ""}\n`);
  } finally {
    if (events) {
      try {
        events.kill("SIGKILL");
        await events.status;
      } catch {
        // gone
      }
    }
    await c.cleanup();
  }
}

/** ctr with no containerd: missing socket (times out) and stale socket (refused at once). */
async function captureDown(cap: Capture): Promise<Record<string, number>> {
  const timings: Record<string, number> = {};
  timings.ctr_down = await cap.all(
    "ctr_down",
    "ctr",
    ["--address", "/nonexistent.sock", "namespace", "ls", "-q"],
  );
  timings.ctr_down_connect_timeout = await cap.all(
    "ctr_down_connect_timeout",
    "ctr",
    ["--address", "/nonexistent.sock", "--connect-timeout", "2s", "namespace", "ls", "-q"],
  );
  // A socket file nobody listens on: what a crashed (SIGKILLed) containerd leaves behind.
  const dir = await Deno.makeTempDir({ prefix: "ctre-e2e-" });
  try {
    const path = `${dir}/containerd.sock`;
    const bound = await new Deno.Command("python3", {
      args: ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path],
    }).output().then((o) => o.success, () => false);
    if (!bound) await Deno.writeFile(path, new Uint8Array()); // a plain file is refused alike
    timings.ctr_refused = await cap.all(
      "ctr_refused",
      "ctr",
      ["--address", path, "namespace", "ls", "-q"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return timings;
}

/** Puts the bin dir of containerd `version` first on PATH (and tells the harness). */
async function useContainerd(version: string): Promise<void> {
  const script = new URL("../../scripts/containerd_bin.sh", import.meta.url).pathname;
  const r = await new Deno.Command("bash", { args: [script, version], stderr: "inherit" }).output();
  if (r.code !== 0) throw new Error(`scripts/containerd_bin.sh ${version} failed`);
  const bin = decoder.decode(r.stdout).trim();
  Deno.env.set("PATH", `${bin}:${Deno.env.get("PATH") ?? ""}`);
  Deno.env.set("CTRE_TEST_CONTAINERD", version);
}

if (import.meta.main) {
  const args = [...Deno.args];
  const flag = args.indexOf("--containerd");
  if (flag >= 0) {
    const [, wanted] = args.splice(flag, 2);
    if (wanted === undefined) {
      throw new Error("--containerd needs a version (1.6.20, 1.7.24, 2.1.9)");
    }
    await useContainerd(wanted);
  } else {
    await useContainerd(wantedContainerdVersion());
  }
  const version = await containerdVersion();
  const minor = /\s(\d+\.\d+)\.\d+/.exec(version)?.[1] ?? "unknown";
  const out = args[0] ?? new URL(`../testdata/ctr-${minor}`, import.meta.url).pathname;
  await Deno.mkdir(out, { recursive: true });
  const cap = new Capture(out);
  log(`${version}\ncapturing into ${out}`);
  await captureListings(cap);
  await captureEvents(cap);
  const timings = await captureDown(cap);
  await cap.write("VERSION", `${version}\n`);
  for (const [name, ms] of Object.entries(timings)) log(`  ${name}: ${(ms / 1000).toFixed(2)} s`);
}
