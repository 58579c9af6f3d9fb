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
