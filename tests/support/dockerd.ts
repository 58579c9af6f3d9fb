/**
 * A private dockerd (Debian trixie's 26.1.5, containerd image store: images in namespace `moby`)
 * on a TestContainerd, for end-to-end tests:
 *
 *   await withContainerd(async (c) => {
 *     await withDockerd(c, async (d) => {
 *       await d.load(await buildOciImage("docker.io/library/a:1", "one"));
 *       await d.dockerOk(["run", "-d", "--network", "none", "docker.io/library/a:1", "sleep", "1d"]);
 *     });
 *   });
 *
 * Binaries come from scripts/setup_docker.sh (scripts/debian_pkg.sh, cached under
 * /opt/ctre-test-tools). Everything dockerd writes is under the containerd's temp dir; its
 * containers' cgroups go under `/<temp dir name>/docker`, which the TestContainerd's cleanup
 * removes with its own.
 *
 * @module
 */
import type { OciImage } from "./oci_image.ts";
import type { CtrResult, TestContainerd } from "./containerd.ts";

export const DOCKER_VERSION = "26.1.5+dfsg1-9+deb13u1+b1";
const CACHE = Deno.env.get("CTRE_TEST_CACHE") ?? "/opt/ctre-test-tools";
const safe = (spec: string) => spec.replace(/[^A-Za-z0-9.+_-]/g, "_");
const DOCKERD = `${CACHE}/debs/trixie/${safe(`docker.io=${DOCKER_VERSION}`)}/usr/sbin/dockerd`;
const DOCKER = `${CACHE}/debs/trixie/${safe(`docker-cli=${DOCKER_VERSION}`)}/usr/bin/docker`;
const START_TIMEOUT_MS = 30_000;

const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Why dockerd cannot run on `c` (binaries missing, containerd older than 1.7), or null. */
export async function dockerUnavailable(c: TestContainerd): Promise<string | null> {
  for (const bin of [DOCKERD, DOCKER]) {
    if (!await exists(bin)) return `${bin} is missing: run scripts/setup_docker.sh`;
  }
  const v = await c.ctr(["version"]);
  const server = /Server:[\s\S]*?Version:\s+v?(\d+)\.(\d+)/.exec(v.stdout);
  if (!server) return `cannot read the containerd version: ${v.stdout}${v.stderr}`;
  const [major, minor] = [Number(server[1]), Number(server[2])];
  if (major < 1 || (major === 1 && minor < 7)) {
    return `Docker ${DOCKER_VERSION.split("+")[0]} needs containerd 1.7+, this is ` +
      `${major}.${minor}`;
  }
  return null;
}

export class TestDockerd {
  readonly dir: string;
  readonly host: string;
  #child: Deno.ChildProcess | undefined;

  private constructor(readonly c: TestContainerd) {
    this.dir = `${c.dir}/docker`;
    this.host = `unix://${this.dir}/docker.sock`;
  }

  get logPath(): string {
    return `${this.dir}/dockerd.log`;
  }

  static async start(c: TestContainerd): Promise<TestDockerd> {
    const d = new TestDockerd(c);
    await Deno.mkdir(`${d.dir}/data`, { recursive: true });
    await Deno.mkdir(`${d.dir}/exec`, { recursive: true });
    const name = c.dir.slice(c.dir.lastIndexOf("/") + 1);
    await Deno.writeTextFile(
      `${d.dir}/daemon.json`,
      JSON.stringify({
        features: { "containerd-snapshotter": true },
        "cgroup-parent": `/${name}/docker`,
      }),
    );
    d.#child = new Deno.Command("sh", {
      args: [
        "-c",
        'exec "$0" "$@" >>"$LOG" 2>&1',
        DOCKERD,
        "--containerd",
        c.address,
        "--data-root",
        `${d.dir}/data`,
        "--exec-root",
        `${d.dir}/exec`,
        "--pidfile",
        `${d.dir}/dockerd.pid`,
        "-H",
        d.host,
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        "--userland-proxy=false",
        "--config-file",
        `${d.dir}/daemon.json`,
      ],
      env: { LOG: d.logPath },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (true) {
      const r = await d.docker(["version"]);
      if (r.code === 0) return d;
      if (Date.now() > deadline) {
        await d.stop();
        const log = await Deno.readTextFile(d.logPath).catch(() => "");
        throw new Error(
          `dockerd did not answer: ${r.stderr}\n${log.split("\n").slice(-30).join("\n")}`,
        );
      }
      await sleep(200);
    }
  }

  /** Runs the docker CLI against this dockerd. */
  async docker(args: string[], timeoutMs = 60_000): Promise<CtrResult> {
    const out = await new Deno.Command(DOCKER, {
      args: ["-H", this.host, ...args],
      env: { DOCKER_CONFIG: `${this.dir}/cli` },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(timeoutMs),
    }).output();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  }

  /** Like {@linkcode docker}; throws unless it exits 0; returns stdout trimmed. */
  async dockerOk(args: string[]): Promise<string> {
    const r = await this.docker(args);
    if (r.code !== 0) throw new Error(`docker ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return r.stdout.trim();
  }

  /** `docker load` of an OCI image tarball (what this store takes). */
  async load(image: OciImage): Promise<void> {
    const tar = `${this.dir}/load-${crypto.randomUUID()}.tar`;
    await Deno.writeFile(tar, image.tar);
    try {
      await this.dockerOk(["load", "-i", tar]);
    } finally {
      await Deno.remove(tar).catch(() => {});
    }
  }

  /** Removes all containers (-f), then stops dockerd (SIGTERM, SIGKILL after 15 s). */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    const ids = await this.docker(["ps", "-aq"]).catch(() => null);
    const list = ids?.stdout.split("\n").filter((s) => s !== "") ?? [];
    if (list.length > 0) await this.docker(["rm", "-f", ...list]).catch(() => {});
    try {
      child.kill("SIGTERM");
    } catch {
      // gone
    }
    const timer = sleep(15_000).then(() => "timeout" as const);
    if (await Promise.race([child.status, timer]) === "timeout") {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone
      }
      await child.status;
    }
    this.#child = undefined;
  }
}

/** Starts a TestDockerd on `c`, runs `fn`, always stops it (the containerd cleans the rest). */
export async function withDockerd(
  c: TestContainerd,
  fn: (d: TestDockerd) => Promise<void>,
): Promise<void> {
  const d = await TestDockerd.start(c);
  try {
    await fn(d);
  } finally {
    await d.stop();
  }
}
