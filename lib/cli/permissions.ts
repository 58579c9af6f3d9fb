/**
 * The single source of the permissions ctre ships with. The compile task, the `start` task and
 * every test that runs the CLI take their flags from {@linkcode permissionFlags}, so what the
 * tests exercise is exactly what an operator audits on a node.
 *
 * @module
 */

/** Where the usage DB, the locks and the keep file live unless `--state-dir` says otherwise. */
export const DEFAULT_STATE_DIR = "/var/spool/ctre";

/**
 * The runtime flags ctre runs with, beside its permissions (compiled in, and in every `deno run`
 * of it):
 * - `--no-prompt`: a permission ctre lacks is an error it reports (e.g. statfs for the disk
 *   figure), never a Deno prompt that waits on the operator's terminal (or forever, under a
 *   scheduler that gave it one);
 * - young-generation semi-spaces of at most 1 MB: the recorder runs for months and allocates a
 *   little per event; V8 would otherwise grow them to 16 MB each, about 15 MB more RSS for the
 *   same work (scripts/bench/recorder.ts shows both).
 */
export const RUNTIME_FLAGS = ["--no-prompt", "--v8-flags=--max-semi-space-size=1"];

/**
 * The Deno permission flags ctre needs: run `ctr` (and nothing else), read and write only
 * under the state dir. No network, no environment, no other files: `ctr` itself reads
 * `CONTAINERD_ADDRESS` and `CONTAINERD_NAMESPACE`.
 */
export function permissionFlags(
  stateDir: string = DEFAULT_STATE_DIR,
  opts: { minFreeRoot?: string } = {},
): string[] {
  for (const dir of [stateDir, opts.minFreeRoot ?? ""]) {
    if (dir.includes(",")) {
      throw new Error(`Path "${dir}" cannot contain a comma (Deno permission lists)`);
    }
  }
  const root = opts.minFreeRoot;
  return [
    "--allow-run=ctr",
    root === undefined ? `--allow-read=${stateDir}` : `--allow-read=${stateDir},${root}`,
    `--allow-write=${stateDir}`,
    // Disk-pressure mode by free space (prune --min-free) measures the root's filesystem.
    ...(root === undefined ? [] : ["--allow-sys=statfs"]),
  ];
}
