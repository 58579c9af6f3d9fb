// deno-lint-ignore-file no-console
/**
 * `deno task bench:image`: what the DaemonSet's two containers use, measured on the release
 * image under `ctr run` (read-only root, no capabilities) in a private containerd, from the
 * containers' own memory and cpuacct cgroups (v1) — ctre and every ctr process it starts:
 *
 * - the recorder: idle for 20 s, then while 40 containers start and exit on the host;
 * - the pruner: one `prune --force --metrics --no-container-cleanup` run (default 15 s double
 *   check) over IMAGES images, 1 namespace, 20 running containers.
 *
 * Prints peak anonymous memory (sampled every 100 ms), the cgroup's peak usage (max_usage_in_bytes:
 * anonymous plus page cache charged to it) and CPU seconds. Needs root, like the tests.
 *
 *   deno task bench:image [--images N]
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildImage, debianCtr, IMAGE_REF } from "../image.ts";
import { TestContainerd } from "../../tests/support/containerd.ts";
import { buildOciImageSet } from "../../tests/support/oci_image.ts";

const NS = "ctre-system";
const SOCKET = "/run/containerd/containerd.sock";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const { values } = parseArgs({ args: Deno.args, options: { images: { type: "string" } } });
const IMAGES = Number(values.images ?? "1000");

async function cat(path: string): Promise<string> {
  const out = await new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" })
    .output();
  return new TextDecoder().decode(out.stdout);
}

/** Samples a container's cgroup every 100 ms until stopped. */
class Sampler {
  peakRss = 0;
  peakUsage = 0;
  cpuNs = 0;
  #stop = false;
  readonly done: Promise<void>;
  constructor(cgroupPath: string) {
    const mem = `/sys/fs/cgroup/memory${cgroupPath}`;
    const cpu = `/sys/fs/cgroup/cpuacct${cgroupPath}`;
    this.done = (async () => {
      while (!this.#stop) {
        const stat = await cat(`${mem}/memory.stat`);
        const rss = Number(/^total_rss (\d+)$/m.exec(stat)?.[1] ?? 0);
        if (stat) this.peakRss = Math.max(this.peakRss, rss);
        const usage = Number((await cat(`${mem}/memory.max_usage_in_bytes`)).trim() || 0);
        this.peakUsage = Math.max(this.peakUsage, usage);
        const ns = Number((await cat(`${cpu}/cpuacct.usage`)).trim() || 0);
        this.cpuNs = Math.max(this.cpuNs, ns);
        await sleep(100);
      }
    })();
  }
  async stop(): Promise<this> {
    this.#stop = true;
    await this.done;
    return this;
  }
}

function runArgs(c: TestContainerd, id: string, stateDir: string, detach: boolean): string[] {
  return [
    "-n",
    NS,
    "run",
    detach ? "-d" : "--rm",
    "--read-only",
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
  ];
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

const work = await Deno.makeTempDir({ prefix: "ctre-bench-image-" });
const tar = join(work, "ctre-image.tar");
const info = await buildImage({ output: tar, ctr: await debianCtr() });
const c = await TestContainerd.start();
try {
  await c.ctrOk(["-n", NS, "image", "import", tar]);
  const set = await buildOciImageSet(
    Array.from(
      { length: IMAGES },
      (_, i) => ({ ref: `docker.io/library/img${i}:1`, variant: `${i}` }),
    ),
  );
  await Deno.writeFile(join(work, "set.tar"), set.tar);
  const imported = await c.ctrRaw(
    ["-n", "default", "image", "import", join(work, "set.tar")],
    900_000,
  );
  if (imported.code !== 0) throw new Error(new TextDecoder().decode(imported.stderr));
  for (let i = 0; i < 20; i++) await c.run("default", `docker.io/library/img${i}:1`, `run-${i}`);
  const stateDir = await Deno.makeTempDir({ prefix: "ctre-state-" });

  // The recorder.
  await c.ctrOk([
    ...runArgs(c, "rec", stateDir, true),
    ...info.entrypoint,
    "record-image-starts",
    "--quiet",
    "--metrics",
  ]);
  await sleep(3000);
  const idle = new Sampler(c.cgroupPath(NS, "rec"));
  await sleep(500);
  const idleStart = idle.cpuNs;
  await sleep(20_000);
  const idleCpu = (idle.cpuNs - idleStart) / 1e9;
  const t0 = Date.now();
  const before = idle.cpuNs;
  for (let i = 0; i < 40; i++) {
    await c.runToExit("default", `docker.io/library/img${i}:1`, `x-${i}`);
  }
  await sleep(2000);
  const rec = await idle.stop();
  const storm = (rec.cpuNs - before) / 1e9;
  console.log(
    `recorder: peak anon ${mib(rec.peakRss)}, peak cgroup usage ${mib(rec.peakUsage)}; ` +
      `CPU idle ${(idleCpu / 20 * 1000).toFixed(1)} ms/s; ` +
      `40 container starts+exits in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${
        storm.toFixed(2)
      } CPU s`,
  );
  await c.ctr(["-n", NS, "task", "kill", "--signal", "SIGTERM", "rec"]);

  // One forced prune run.
  const pruneArgs = [
    "prune",
    "--force",
    "--metrics",
    "--no-container-cleanup",
    "--min-age",
    "0",
  ];
  const child = new Deno.Command("ctr", {
    args: [
      "--address",
      c.address,
      ...runArgs(c, "prune", stateDir, false),
      ...info.entrypoint,
      ...pruneArgs,
    ],
    env: { CONTAINERD_SNAPSHOTTER: c.snapshotter },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  await sleep(300);
  const p = new Sampler(c.cgroupPath(NS, "prune"));
  const t1 = Date.now();
  const out = await child.output();
  await p.stop();
  console.log(
    `pruner: one forced run over ${IMAGES} images (exit ${out.code}) in ${
      ((Date.now() - t1) / 1000).toFixed(1)
    } s: ` +
      `peak anon ${mib(p.peakRss)}, peak cgroup usage ${mib(p.peakUsage)}, ` +
      `${(p.cpuNs / 1e9).toFixed(2)} CPU s (sampled to its last 100 ms)`,
  );
  if (out.code !== 0) console.log(new TextDecoder().decode(out.stderr));
  console.log(`remaining images: ${(await c.imageRefs("default")).length}`);
} finally {
  await c.cleanup();
  await Deno.remove(work, { recursive: true });
}
