/**
 * A private OCI registry for end-to-end tests: Debian bookworm's `docker-registry` binary
 * (distribution 2.8, fetched by scripts/setup_cri.sh, never installed as a service) on a
 * 127.0.0.1 port, storage in its own temp dir, plain HTTP.
 *
 *   const reg = await TestRegistry.start();
 *   reg.host;        // "127.0.0.1:PORT", image refs are `${reg.host}/library/a:1`
 *   reg.configPath;  // a containerd registry `config_path` (hosts.toml for reg.host)
 *   await reg.stop(); // kills it and removes its dir
 *
 * Tests run without --allow-net, so the port is picked at random and readiness is read from
 * the registry's log ("listening on"); a port in use is retried with another.
 *
 * @module
 */

const CACHE = Deno.env.get("CTRE_TEST_CACHE") ?? "/opt/ctre-test-tools";
/** The registry binary scripts/setup_cri.sh extracts. */
export const REGISTRY_BINARY = `${CACHE}/debs/bookworm/docker-registry/usr/bin/docker-registry`;

const START_TIMEOUT_MS = 15_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function readText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return "";
  }
}

/** A running registry. Create with {@linkcode TestRegistry.start}. */
export class TestRegistry {
  /** Temp dir: storage/, config.yml, registry.log, certs.d/. */
  readonly dir: string;
  /** `127.0.0.1:PORT`, the registry host part of image refs. */
  readonly host: string;
  #child: Deno.ChildProcess;

  private constructor(dir: string, host: string, child: Deno.ChildProcess) {
    this.dir = dir;
    this.host = host;
    this.#child = child;
  }

  /** containerd's registry `config_path`: holds `<host>/hosts.toml` (plain HTTP, pull+push). */
  get configPath(): string {
    return `${this.dir}/certs.d`;
  }
  get logPath(): string {
    return `${this.dir}/registry.log`;
  }

  /** Starts a registry on a free random port and waits until it listens. */
  static async start(): Promise<TestRegistry> {
    const dir = await Deno.makeTempDir({ prefix: "ctre-e2e-registry-" });
    try {
      await Deno.mkdir(`${dir}/storage`);
      for (let attempt = 0;; attempt++) {
        const port = 20_000 + Math.floor(Math.random() * 40_000);
        const host = `127.0.0.1:${port}`;
        const child = await TestRegistry.#spawn(dir, host);
        const outcome = await TestRegistry.#waitListening(dir, child);
        if (outcome === "listening") {
          await Deno.mkdir(`${dir}/certs.d/${host}`, { recursive: true });
          await Deno.writeTextFile(
            `${dir}/certs.d/${host}/hosts.toml`,
            [
              `server = "http://${host}"`,
              "",
              `[host."http://${host}"]`,
              '  capabilities = ["pull", "resolve", "push"]',
              "",
            ].join("\n"),
          );
          return new TestRegistry(dir, host, child);
        }
        const log = await readText(`${dir}/registry.log`);
        if (!/address already in use/.test(log) || attempt >= 10) {
          throw new Error(`docker-registry did not start (${outcome}):\n${log.slice(-2000)}`);
        }
      }
    } catch (e) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw e;
    }
  }

  static async #spawn(dir: string, host: string): Promise<Deno.ChildProcess> {
    await Deno.writeTextFile(
      `${dir}/config.yml`,
      [
        "version: 0.1",
        "log:",
        "  level: info",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        `    rootdirectory: ${JSON.stringify(`${dir}/storage`)}`,
        "  delete:",
        "    enabled: true",
        "http:",
        `  addr: ${host}`,
        "",
      ].join("\n"),
    );
    await Deno.writeTextFile(`${dir}/registry.log`, "");
    return new Deno.Command("sh", {
      args: [
        "-c",
        'exec "$0" serve "$1" >>"$2" 2>&1',
        REGISTRY_BINARY,
        `${dir}/config.yml`,
        `${dir}/registry.log`,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  }

  static async #waitListening(
    dir: string,
    child: Deno.ChildProcess,
  ): Promise<"listening" | "exited" | "timeout"> {
    let exited = false;
    const status = child.status.finally(() => {
      exited = true;
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (true) {
      if (/listening on /.test(await readText(`${dir}/registry.log`))) return "listening";
      if (exited) {
        await status;
        return "exited";
      }
      if (Date.now() > deadline) {
        try {
          child.kill("SIGKILL");
        } catch {
          // gone
        }
        await status;
        return "timeout";
      }
      await sleep(50);
    }
  }

  /** Stops the registry and removes its dir. Never throws; may be called more than once. */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await this.#child.status;
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
