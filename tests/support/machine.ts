/**
 * A throwaway Debian machine booted with systemd-nspawn, for tests of the shipped systemd units
 * under a real systemd (facts in docs/real-nodes.md): an overlay on the rootfs that
 * scripts/setup_systemd.sh caches (its writes go to a temp dir; /var/lib/containerd is a plain
 * temp dir, as containerd's overlay snapshots cannot sit on an overlay), booted with a private
 * network and the v1 cgroup controllers (runc inside needs them on this kind of host), driven
 * with `nsenter` (no machinectl: the host's systemd is not running).
 * {@linkcode Machine.destroy} stops it and removes every trace: the processes, mounts, cgroups
 * and the temp dir.
 *
 * @module
 */
import { join } from "node:path";
import { mountsUnder } from "./containerd.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CONTROLLERS = ["pids", "devices", "cpu", "cpuacct", "cpuset", "freezer", "blkio", "memory"];
const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[], env?: Record<string, string>): Promise<RunResult> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    ...(env ? { env, clearEnv: true } : {}),
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** The cached rootfs, made (about 80 s, once) by scripts/setup_systemd.sh. */
export async function cachedRootfs(): Promise<string> {
  const out = await must("bash", [join(ROOT, "scripts/setup_systemd.sh")]);
  return out.trim().split("\n").at(-1)!;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it returns a value other than undefined, or throws after `ms`. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  ms = 60_000,
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await sleep(250);
  }
  throw new Error(`Timed out after ${ms} ms waiting for ${what}${last ? `: ${last}` : ""}`);
}

export class Machine {
  readonly name: string;
  readonly root: string;
  #child: Deno.ChildProcess | null = null;
  #console = "";
  #leader = 0;

  private constructor(readonly dir: string, readonly binds: string[]) {
    this.name = dir.slice(dir.lastIndexOf("/") + 1);
    this.root = join(dir, "root");
  }

  /** A machine on `rootfs` (never written to). `binds`: nspawn `--bind-ro=` arguments. */
  static async create(rootfs: string, binds: string[] = []): Promise<Machine> {
    const dir = await Deno.makeTempDir({ prefix: "ctre-nspawn-" });
    const m = new Machine(dir, binds);
    try {
      for (const d of ["root", "upper", "work", "containerd"]) await Deno.mkdir(join(dir, d));
      const opts = `lowerdir=${rootfs},upperdir=${dir}/upper,workdir=${dir}/work`;
      await must("mount", ["-t", "overlay", "overlay", "-o", opts, m.root]);
    } catch (e) {
      await m.destroy();
      throw e;
    }
    return m;
  }

  /** What nspawn and the machine's console printed. */
  get console(): string {
    return this.#console;
  }

  /** Boots the machine and waits until systemd has finished starting up. */
  async boot(): Promise<void> {
    const args = [
      "-D",
      this.root,
      "--boot",
      `--machine=${this.name.replace(/[^a-zA-Z0-9-]/g, "-")}`,
      "--register=no",
      "--keep-unit",
      "--private-network",
      // runc inside creates session keyrings.
      "--system-call-filter=add_key keyctl request_key",
      "--console=pipe",
      `--bind=${this.dir}/containerd:/var/lib/containerd`,
      ...this.binds.map((b) => `--bind-ro=${b}`),
    ];
    // nspawn in a cgroup of its own (name=systemd and cgroup2), so that the machine's cgroups
    // land under it and go with it; containers inside are given /<name>/... too (ctrRun()).
    const enter = 'for h in systemd unified; do [ -d "/sys/fs/cgroup/$h" ] || continue; ' +
      `mkdir -p "/sys/fs/cgroup/$h/${this.cgroupName()}" && ` +
      `echo $$ > "/sys/fs/cgroup/$h/${this.cgroupName()}/cgroup.procs" || exit 1; done; ` +
      'exec systemd-nspawn "$@"';
    this.#child = new Deno.Command("sh", {
      args: ["-c", enter, "sh", ...args],
      // No SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: on this host (v1 controllers, a cgroup2 at
      // /sys/fs/cgroup/unified) nspawn then picks the hybrid layout, where systemd inside learns
      // that a unit's cgroup emptied (cgroup.events); in the legacy layout it never does, and a
      // killed service hangs in "deactivating" until its stop timeout.
      env: { PATH },
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const drain = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) this.#console += chunk;
    };
    drain(this.#child.stdout).catch(() => {});
    drain(this.#child.stderr).catch(() => {});
    const nspawnPid = this.#child.pid;
    this.#leader = await waitFor(`the machine's init (nspawn: ${this.#console})`, async () => {
      // (Deno reads /proc only with --allow-all; ps does it.)
      const kids = await run("ps", ["-o", "pid=,comm=", "--ppid", String(nspawnPid)]);
      const [pid, comm] = kids.stdout.trim().split(/\s+/);
      return comm === "systemd" ? Number(pid) : undefined;
    }, 30_000);
    // nspawn mounts the v1 controllers read-only; runc inside needs to write them.
    for (const c of CONTROLLERS) {
      await must("nsenter", [
        "-t",
        String(this.#leader),
        "-m",
        "mount",
        "-o",
        "remount,bind,rw",
        `/sys/fs/cgroup/${c}`,
      ]);
    }
    await waitFor("systemd to finish starting up", async () => {
      const r = await this.sh("systemctl is-system-running");
      const state = r.stdout.trim();
      return state === "running" || state === "degraded" ? state : undefined;
    }, 60_000);
  }

  /** Runs a command inside the machine (all its namespaces), with a plain environment. */
  exec(cmd: string, args: string[] = []): Promise<RunResult> {
    if (!this.#leader) throw new Error("the machine is not running");
    return run("nsenter", ["-t", String(this.#leader), "-a", cmd, ...args], {
      PATH,
      LANG: "C.UTF-8",
      SYSTEMD_PAGER: "",
      SYSTEMD_COLORS: "0",
    });
  }

  /** Runs a shell command line inside the machine. */
  sh(line: string): Promise<RunResult> {
    return this.exec("/bin/sh", ["-c", line]);
  }

  /** Like sh(), but throws unless it exits 0; returns stdout. */
  async ok(line: string): Promise<string> {
    const r = await this.sh(line);
    if (r.code !== 0) {
      throw new Error(`in the machine: ${line}: exit ${r.code}: ${r.stderr}${r.stdout}`);
    }
    return r.stdout;
  }

  /** `systemctl show -p … unit` as a record. */
  async show(unit: string, ...props: string[]): Promise<Record<string, string>> {
    const out = await this.ok(`systemctl show ${props.map((p) => `-p ${p}`).join(" ")} ${unit}`);
    return Object.fromEntries(
      out.trim().split("\n").filter((l) => l.includes("=")).map((l) => {
        const i = l.indexOf("=");
        return [l.slice(0, i), l.slice(i + 1)];
      }),
    );
  }

  /**
   * Cuts the machine's power: SIGKILL to its init, which kills every process of its PID namespace
   * at once (containers inside too), then nspawn exits. A clean halt would wait up to 90 s for
   * container init processes, which ignore SIGTERM; killing only nspawn leaves the machine running.
   */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    // Also when boot() gave up before it knew the init: nspawn's child.
    const leader = this.#leader ||
      Number((await run("ps", ["-o", "pid=", "--ppid", String(child.pid)])).stdout.trim()) || 0;
    if (leader) await run("kill", ["-KILL", String(leader)]);
    this.#child = null;
    this.#leader = 0;
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, 10_000);
    await child.status;
    clearTimeout(timer);
  }

  /** Stops the machine and removes its mounts, cgroups and temp dir. Safe to call twice. */
  async destroy(): Promise<void> {
    await this.stop();
    for (const point of (await mountsUnder(this.dir)).reverse()) {
      await run("umount", ["-l", point]);
    }
    // nspawn's cgroup with the machine's units under it, and its containers', in every hierarchy.
    const found = await run("sh", [
      "-c",
      `for d in /sys/fs/cgroup/*/${this.cgroupName()}; do [ -d "$d" ] && find "$d" -depth -type d; done`,
    ]);
    for (const d of found.stdout.split("\n").filter((s) => s !== "")) {
      await Deno.remove(d).catch(() => {});
    }
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  /** The machine's cgroup name in every hierarchy. */
  cgroupName(): string {
    return this.name.replace(/[^a-zA-Z0-9-]/g, "-");
  }

  /**
   * `ctr run -d` inside the machine with a cgroup under the machine's (the v1 controllers inside
   * are the host's: without it containerd would use /<namespace>/<id> on the host).
   */
  ctrRun(ns: string, image: string, id: string, ...cmd: string[]): Promise<string> {
    return this.ok(
      `ctr -n ${ns} run -d --cgroup /${this.cgroupName()}/${id} ${image} ${id} ${cmd.join(" ")}`,
    );
  }
}
