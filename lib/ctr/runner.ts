/**
 * The one seam through which ctre runs `ctr`. Everything else takes a {@linkcode Ctr}, so tests
 * can script it and benchmarks can count the processes.
 *
 * @module
 */
import { CtrError, CtrExitError } from "../core/errors.ts";

export interface CtrResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A long-running ctr (`ctr event`): its stdout lines, then how it ended. */
export interface CtrStream {
  lines: AsyncIterable<string>;
  /** Resolves once ctr has exited, with its code and stderr. */
  done: Promise<{ code: number; stderr: string }>;
  /** Stops the process (SIGTERM). */
  stop(): void;
}

export interface Ctr {
  /** Runs `ctr <global flags> ...args` to completion. Never throws for a non-zero exit. */
  run(args: string[]): Promise<CtrResult>;
  /** Starts `ctr <global flags> ...args` and streams its stdout line by line. */
  stream(args: string[]): CtrStream;
  /** How many ctr processes this runner has started. */
  readonly spawned: number;
}

/** The text of a ctr command line for messages: `ctr -n k8s.io image ls`. */
export function commandText(args: string[]): string {
  return ["ctr", ...args].join(" ");
}

/** Runs ctr and returns its stdout, or throws a CtrError that says what failed and why. */
export async function ctrOk(ctr: Ctr, args: string[]): Promise<string> {
  const r = await ctr.run(args);
  if (r.code !== 0) throw failure(args, r);
  return r.stdout;
}

/**
 * How each ctr version says it cannot reach containerd (seen live, tests/testdata/ctr-*):
 * - 1.6, 1.7, socket missing: `ctr: failed to dial "<path>": context deadline exceeded: …` (10 s);
 * - 2.x, socket missing: `ctr: cannot access socket <path>: stat <path>: no such file or directory`;
 * - all, socket left by a dead containerd: `… dial unix <path>: connect: connection refused`.
 */
const UNREACHABLE =
  /failed to dial|connection refused|cannot access socket|no such file or directory.*sock/i;

/** The CtrError for a failed invocation, with a hint when containerd cannot be reached. */
export function failure(args: string[], r: CtrResult): CtrExitError {
  const why = lastLines(r.stderr) || "no output on stderr";
  const hint = UNREACHABLE.test(why)
    ? " (is containerd running, and is --address or CONTAINERD_ADDRESS right?)"
    : "";
  return new CtrExitError(
    `${commandText(args)} exited with code ${r.code}: ${why}${hint}`,
    r.code,
    r.stderr,
  );
}

function lastLines(stderr: string): string {
  return stderr.trim().split("\n").slice(-3).join(" ").trim();
}

/** Why spawning ctr itself failed, as a CtrError. */
function spawnFailure(args: string[], e: unknown): CtrError {
  if (e instanceof Deno.errors.NotFound) {
    return new CtrError(
      `Cannot run ${commandText(args)}: ctr is not installed or not on PATH`,
      127,
      "",
    );
  }
  if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
    return new CtrError(
      `Cannot run ${commandText(args)}: permission denied (ctre needs --allow-run=ctr)`,
      126,
      "",
    );
  }
  return new CtrError(`Cannot run ${commandText(args)}: ${e}`, 1, "");
}

/** The lines of a byte stream (UTF-8), without their newlines; a last unterminated line too. */
export async function* splitLines(
  stream: ReadableStream<Uint8Array>,
): AsyncIterable<string> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
    }
  }
  if (buffered !== "") yield buffered;
}

/**
 * The real runner. `address` becomes `--address`, placed before the subcommand as every ctr
 * version requires; without it ctr uses CONTAINERD_ADDRESS or its default socket.
 * Needs `--allow-run=ctr`.
 */
export function systemCtr(address?: string): Ctr {
  const global = address === undefined ? [] : ["--address", address];
  let spawned = 0;
  const command = (args: string[]) => {
    spawned++;
    return new Deno.Command("ctr", {
      args: [...global, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    });
  };
  return {
    get spawned() {
      return spawned;
    },
    async run(args) {
      let child: Deno.ChildProcess;
      try {
        child = command(args).spawn();
      } catch (e) {
        throw spawnFailure(args, e);
      }
      // Read as streams: at node scale `output()` spent ~110 ms of CPU reading one planning
      // pass's 13 listings (0.8 MB), streams ~5 ms (deno --cpu-prof).
      const [stdout, stderr, status] = await Promise.all([
        new Response(child.stdout).text(),
        new Response(child.stderr).text(),
        child.status,
      ]);
      return { code: status.code, stdout, stderr };
    },
    stream(args) {
      let child: Deno.ChildProcess;
      try {
        child = command(args).spawn();
      } catch (e) {
        throw spawnFailure(args, e);
      }
      const stderr = new Response(child.stderr).text();
      return {
        lines: splitLines(child.stdout),
        done: child.status.then(async (s) => ({ code: s.code, stderr: await stderr })),
        stop() {
          try {
            child.kill("SIGTERM");
          } catch {
            // Already exited.
          }
        },
      };
    },
  };
}
