/**
 * The release image (`deno task image`, scripts/image.ts), imported into a private real
 * containerd and started with `ctr run` the way the DaemonSet runs it: read-only root, every
 * capability dropped, only containerd's socket (read-only) and the state dir bind-mounted.
 *
 * - `ctre prune --dry-run` inside lists exactly what the same command lists on the host;
 * - the recorder inside records a container started on the host;
 * - `prune --force --every` runs twice, writes metrics into the host's state dir and stops
 *   cleanly on SIGTERM between runs; SIGTERM during a run lets the run finish.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildImage, debianCtr, IMAGE_REF, type ImageInfo } from "../scripts/image.ts";
import { permissionFlags, RUNTIME_FLAGS } from "../lib/cli/permissions.ts";
import { type TestContainerd, withContainerd } from "./support/containerd.ts";
import { runCtre, tempStateDir } from "./support/cli.ts";

const NS = "ctre-system";
/** containerd's default capabilities (oci.defaultUnixCaps / Docker's set): all dropped. */
const DEFAULT_CAPS = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];
const SOCKET = "/run/containerd/containerd.sock";
const img = (name: string) => `docker.io/library/${name}:1`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Series name (with labels) to value, from a metrics file (metrics_test.ts checks its format). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^(\S+) (\S+)$/.exec(line);
    if (m && !line.startsWith("#")) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** `ctr run` of the image in the test containerd: its output collected as it comes. */
class InContainer {
  readonly child: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  exited = false;
  readonly done: Promise<Deno.CommandStatus>;

  /**
   * `args` are ctre's: ctr run replaces the image's Entrypoint and Cmd by its arguments (unlike
   * Kubernetes, which appends `args` to the entrypoint), so the image config's Entrypoint goes
   * first, read from the tarball by imageConfig().
   */
  constructor(
    readonly c: TestContainerd,
    readonly id: string,
    stateDir: string,
    entrypoint: string[],
    args: string[],
  ) {
    this.child = new Deno.Command("ctr", {
      args: [
        "--address",
        c.address,
        "-n",
        NS,
        "run",
        "--rm",
        "--read-only",
        ...DEFAULT_CAPS.flatMap((cap) => ["--cap-drop", cap]),
        "--runc-root",
        c.runcRoot,
        "--fifo-dir",
        c.fifoDir,
        "--cgroup",
        c.cgroupPath(NS, id),
        "--mount",
        `type=bind,src=${c.address},dst=${SOCKET},options=rbind:ro`,
        "--mount",
        `type=bind,src=${stateDir},dst=/var/spool/ctre,options=rbind:rw`,
        IMAGE_REF,
        id,
        ...entrypoint,
        ...args,
      ],
      env: { CONTAINERD_SNAPSHOTTER: c.snapshotter },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const pump = async (stream: ReadableStream<Uint8Array>, into: "stdout" | "stderr") => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) this[into] += text;
    };
    const pumps = Promise.all([
      pump(this.child.stdout, "stdout"),
      pump(this.child.stderr, "stderr"),
    ]);
    this.done = Promise.all([this.child.status, pumps]).then(([s]) => {
      this.exited = true;
      return s;
    });
  }

  get output(): string {
    return `--- stdout:\n${this.stdout}--- stderr:\n${this.stderr}`;
  }

  /** Waits until `re` matches stderr. */
  async waitFor(re: RegExp, timeoutMs = 60_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!re.test(this.stderr)) {
      if (this.exited || Date.now() > end) {
        throw new Error(
          `${this.exited ? "exited" : "timed out"} waiting for ${re}\n${this.output}`,
        );
      }
      await sleep(100);
    }
  }

  /**
   * Waits until the container has a second process: ctre started a ctr, so it is in a run (and
   * listens for SIGTERM: it does before its first run).
   */
  async waitForChild(timeoutMs = 60_000): Promise<void> {
    const path = this.c.cgroupPath(NS, this.id);
    const candidates = [`/sys/fs/cgroup/pids${path}`, `/sys/fs/cgroup${path}`];
    const end = Date.now() + timeoutMs;
    for (;;) {
      for (const dir of candidates) {
        const out = await new Deno.Command("cat", {
          args: [`${dir}/cgroup.procs`],
          stdout: "piped",
          stderr: "null",
        }).output();
        const pids = new TextDecoder().decode(out.stdout).split("\n").filter((l) => l !== "");
        // A ctr process, not just two pids: while `ctr run` is still starting the task, runc's
        // init shares the cgroup, and a SIGTERM then kills the task before ctre runs.
        if (pids.length >= 2) {
          const comm = await new Deno.Command("cat", {
            args: pids.map((p) => `/proc/${p}/comm`),
            stdout: "piped",
            stderr: "null",
          }).output();
          if (new TextDecoder().decode(comm.stdout).split("\n").includes("ctr")) return;
        }
      }
      if (this.exited || Date.now() > end) throw new Error(`no ctr in ${this.id}\n${this.output}`);
      await sleep(50);
    }
  }

  /** SIGTERM to the container's process (ctre is pid 1 there). */
  async terminate(): Promise<void> {
    await this.c.ctrOk(["-n", NS, "task", "kill", "--signal", "SIGTERM", this.id]);
  }

  /** Waits for the exit; fails the test after `timeoutMs`. */
  async exit(timeoutMs = 60_000): Promise<number> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.id} did not exit\n${this.output}`)),
        timeoutMs,
      );
    });
    try {
      return (await Promise.race([this.done, timeout])).code;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** One file of a tarball, via tar(1). */
async function tarFile(tarball: string, name: string): Promise<string> {
  const out = await new Deno.Command("tar", { args: ["-xOf", tarball, name], stdout: "piped" })
    .output();
  assert.equal(out.code, 0, `tar -xOf ${tarball} ${name}`);
  return new TextDecoder().decode(out.stdout);
}

/** The image config in the tarball, by way of its index and manifest. */
async function imageConfig(tarball: string): Promise<{
  config: { Entrypoint: string[]; Cmd: string[]; Env: string[] };
  architecture: string;
}> {
  const blob = (digest: string) => tarFile(tarball, `blobs/sha256/${digest.slice(7)}`);
  const index = JSON.parse(await tarFile(tarball, "index.json"));
  assert.equal(index.manifests[0].annotations["io.containerd.image.name"], IMAGE_REF);
  const manifest = JSON.parse(await blob(index.manifests[0].digest));
  return JSON.parse(await blob(manifest.config.digest));
}

async function runToEnd(
  c: TestContainerd,
  id: string,
  stateDir: string,
  entrypoint: string[],
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = new InContainer(c, id, stateDir, entrypoint, args);
  const code = await r.exit();
  return { code, stdout: r.stdout, stderr: r.stderr };
}

let built: Promise<{ info: ImageInfo; dir: string }> | undefined;

/** Builds the image once for this file, into a temp dir. */
function image(): Promise<{ info: ImageInfo; dir: string }> {
  built ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "ctre-image-" });
    const info = await buildImage({ output: join(dir, "ctre-image.tar"), ctr: await debianCtr() });
    return { info, dir };
  })();
  return built;
}

Deno.test("the image holds ctre, ctr, their libraries and nothing else; entrypoint = shipped flags", async () => {
  const { info, dir } = await image();
  const config = await imageConfig(join(dir, "ctre-image.tar"));
  assert.deepEqual(config.config.Entrypoint, info.entrypoint);
  assert.ok(config.config.Env.includes("PATH=/usr/bin"));
  assert.deepEqual(info.entrypoint, [
    "/usr/bin/deno",
    "run",
    ...RUNTIME_FLAGS,
    ...permissionFlags(),
    "/app/main.ts",
  ]);
  const paths = info.files.map((f) => f.path);
  assert.ok(paths.includes("/usr/bin/ctr") && paths.includes("/usr/bin/deno"), paths.join(" "));
  for (const p of paths) {
    assert.match(
      p,
      /^\/(usr\/bin\/(ctr|deno)|app\/(main\.ts|deno\.json|lib\/(\w+\/)*\w+\.ts)|lib(64)?\/.*\.so[.\d]*)$/,
      p,
    );
  }
  assert.ok(!paths.some((p) => /\/(sh|bash|busybox)$/.test(p)), "no shell");
  assert.ok(paths.some((p) => p.includes("ld-linux")), "the glibc loader");
});

Deno.test("with a deno compile output, the image holds it instead of Deno and the sources", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctre-image-" });
  try {
    // A small dynamically linked stand-in: deno compile cannot run here (it downloads denort).
    const info = await buildImage({
      output: join(dir, "ctre-image.tar"),
      ctr: await debianCtr(),
      compiled: "/bin/true",
    });
    assert.deepEqual(info.entrypoint, ["/usr/bin/ctre"]);
    assert.deepEqual((await imageConfig(join(dir, "ctre-image.tar"))).config.Entrypoint, [
      "/usr/bin/ctre",
    ]);
    const paths = info.files.map((f) => f.path);
    assert.ok(paths.includes("/usr/bin/ctre") && paths.includes("/usr/bin/ctr"));
    assert.ok(!paths.some((p) => p.startsWith("/app/") || p === "/usr/bin/deno"), paths.join(" "));
    assert.ok(paths.some((p) => p.includes("ld-linux")), "the loader");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "the image under ctr run (read-only root, no capabilities): same dry run as the host, " +
    "records host containers, --every repeats and stops on SIGTERM",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const { info, dir } = await image();
    const entrypoint = (await imageConfig(join(dir, "ctre-image.tar"))).config.Entrypoint;
    await withContainerd(async (c) => {
      await c.ctrOk(["-n", NS, "image", "import", join(dir, "ctre-image.tar")]);
      assert.match(await c.ctrOk(["-n", NS, "image", "ls"]), new RegExp(info.digest));
      await c.importImage("default", img("gone"), "gone");
      await c.importImage("default", img("used"), "used");
      await c.run("default", img("used"), "c-used");
      const stateDir = await tempStateDir();
      const policy = ["--min-age", "0", "--double-check", "0", "-n", "default"];

      await t.step("prune --dry-run inside lists exactly what it lists on the host", async () => {
        const host = await runCtre(["prune", "--dry-run", ...policy], {
          address: c.address,
          stateDir,
        });
        assert.equal(host.code, 0, host.stderr);
        assert.match(host.stdout, /^default docker\.io\/library\/gone:1$/m);
        assert.doesNotMatch(host.stdout, /used:1/);
        const inside = await runToEnd(c, "ctre-dry", stateDir, entrypoint, [
          "prune",
          "--dry-run",
          ...policy,
        ]);
        assert.equal(inside.code, 0, inside.stderr);
        assert.equal(inside.stdout, host.stdout);
        assert.equal(inside.stderr, host.stderr);
      });

      await t.step("the recorder inside records a container started on the host", async () => {
        const rec = new InContainer(c, "ctre-rec", stateDir, entrypoint, [
          "record-image-starts",
          "--flush-interval",
          "1s",
          "--metrics",
        ]);
        const metrics = join(stateDir, "metrics", "ctre.prom");
        // Its first metrics write comes after it subscribed to the events.
        for (let i = 0; !(await Deno.stat(metrics).catch(() => null)); i++) {
          if (i > 300 || rec.exited) throw new Error(`no recorder metrics\n${rec.output}`);
          await sleep(100);
        }
        await sleep(1000);
        const before = Math.floor(Date.now() / 1000);
        await c.runToExit("default", img("gone"), "c-host");
        const db = join(stateDir, "image_starts");
        const line = new RegExp(
          `^(\\d+) (\\d+|-+) default ${img("gone").replace(/\./g, "\\.")}$`,
          "m",
        );
        for (let i = 0; !line.test(await Deno.readTextFile(db).catch(() => "")); i++) {
          if (i > 150) throw new Error(`not recorded\n${rec.output}`);
          await sleep(100);
        }
        const start = Number(line.exec(await Deno.readTextFile(db))![1]);
        assert.ok(start >= before - 1 && start <= Date.now() / 1000 + 1, `start ${start}`);
        await rec.terminate();
        assert.equal(await rec.exit(30_000), 0, rec.output);
        // Its stopped container would keep the image in use for the next step.
        await c.ctr(["-n", "default", "task", "rm", "c-host"]);
        await c.ctrOk(["-n", "default", "container", "rm", "c-host"]);
      });

      await t.step(
        "prune --force --every: two runs, metrics on the host, SIGTERM between runs exits 0",
        async () => {
          const every = new InContainer(c, "ctre-every", stateDir, entrypoint, [
            "prune",
            "--force",
            "--metrics",
            "--every",
            "4s",
            "--jitter",
            "1s",
            "--used-within",
            "0",
            ...policy,
          ]);
          await every.waitFor(/run 2 ended/);
          await every.terminate();
          const code = await every.exit(10_000);
          assert.equal(code, 0, every.output);
          assert.match(every.stdout, /^\(deleted\) default docker\.io\/library\/gone:1$/m);
          const ends = every.stderr.match(
            /^ctre: run \d ended with exit code 0; next run in [3-5]s /gm,
          );
          assert.equal(ends?.length, 2, every.output);
          assert.match(every.stderr, /ctre: stopped between runs\n$/);
          assert.deepEqual(await c.imageRefs("default"), [img("used")]);
          const series = samples(await Deno.readTextFile(join(stateDir, "metrics", "ctre.prom")));
          assert.equal(series.get("ctre_prune_success"), 1);
          assert.ok((series.get("ctre_prune_content_store_bytes") ?? 0) > 0);
          assert.ok(
            (series.get("ctre_recorder_events_recorded_total") ?? 0) >= 1,
            "both in one file",
          );
        },
      );

      await t.step("SIGTERM during a run: the run finishes, then ctre exits 0", async () => {
        await c.importImage("default", img("late"), "late");
        const every = new InContainer(c, "ctre-mid", stateDir, entrypoint, [
          "prune",
          "--dry-run",
          "--every",
          "1h",
          "--min-age",
          "0",
          "--used-within",
          "0",
          "--double-check",
          "8s",
          "-n",
          "default",
        ]);
        // In the run (it lists only at its end): a ctr of the double check is running. Not
        // sooner: a SIGTERM before ctre listens would be ignored (pid 1 has no default action).
        await every.waitForChild();
        const signalled = Date.now();
        await every.terminate();
        assert.equal(await every.exit(30_000), 0, every.output);
        assert.ok(Date.now() - signalled > 1000, "it finished the double check first");
        assert.match(every.stdout, /^default docker\.io\/library\/late:1$/m, "the run completed");
        assert.match(every.stderr, /^ctre: run 1 ended with exit code 0; stopping$/m);
        assert.doesNotMatch(every.stderr, /run 2/);
      });

      await Deno.remove(stateDir, { recursive: true });
    });
  },
});
