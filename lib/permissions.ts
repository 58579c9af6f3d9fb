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
export function permissionFlags(stateDir: string = DEFAULT_STATE_DIR): string[] {
  if (stateDir.includes(",")) {
    throw new Error(`State dir "${stateDir}" cannot contain a comma (Deno permission lists)`);
  }
  return [
    "--allow-run=ctr",
    `--allow-read=${stateDir}`,
    `--allow-write=${stateDir}`,
  ];
}
