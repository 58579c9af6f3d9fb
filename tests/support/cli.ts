/**
 * Runs the ctre CLI the way it ships: `deno run` with exactly the flags of
 * lib/cli/permissions.ts for the test's own state dir. Never -A, never --allow-env.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { permissionFlags, RUNTIME_FLAGS } from "../../lib/cli/permissions.ts";

export const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));

/** A forced prune that judges by use alone: no minimum age, no usage window, no double check. */
export const PRUNE_NOW = [
  "prune",
  "--force",
  "--json",
  "--min-age",
  "0",
  "--used-within",
  "0",
  "--double-check",
  "0",
];

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** containerd socket, passed as --address after the command. */
  address?: string;
  /** State dir: the permissions are scoped to it and it is passed as --state-dir. */
  stateDir: string;
  /** Text for stdin; stdin is /dev/null when absent. */
  stdin?: string;
  /** Run with the extra flags of a --min-free build for this containerd root. */
  minFreeRoot?: string;
}

/** Commands that read no state dir and talk to no containerd: no --address, no --state-dir. */
const UNSCOPED = new Set(["completion", "man"]);

/** The argument vector of `deno` that runs ctre under the shipped permissions. */
export function ctreArgs(args: string[], opts: CliOptions): string[] {
  const [command, ...rest] = args;
  const scoped = command === undefined || command.startsWith("-") || UNSCOPED.has(command) ? [] : [
    ...(opts.address === undefined ? [] : ["--address", opts.address]),
    "--state-dir",
    opts.stateDir,
  ];
  return [
    "run",
    "--quiet",
    ...RUNTIME_FLAGS,
    ...permissionFlags(
      opts.stateDir,
      opts.minFreeRoot === undefined ? {} : { minFreeRoot: opts.minFreeRoot },
    ),
    MAIN,
    ...(command === undefined ? [] : [command]),
    ...scoped,
    ...rest,
  ];
}

/** Starts ctre; the caller reads its output and status. */
export function spawnCtre(args: string[], opts: CliOptions): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ctreArgs(args, opts),
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
}

/** Runs ctre to completion. */
export async function runCtre(args: string[], opts: CliOptions): Promise<CliResult> {
  const child = spawnCtre(args, opts);
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/** A fresh temp state dir. */
export function tempStateDir(): Promise<string> {
  return Deno.makeTempDir({ prefix: "ctre-state-" });
}
