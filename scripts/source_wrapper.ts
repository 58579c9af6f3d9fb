// deno-lint-ignore-file no-console
/**
 * The `ctre` of a from-source install (`scripts/install.sh --from-source`, for where
 * `deno compile` cannot run): a shell script that execs `deno run` on the installed sources with
 * exactly the shipped permission flags, taken from lib/cli/permissions.ts like the compiled binary's.
 *
 *   deno run scripts/source_wrapper.ts DENO SOURCE_DIR   # prints the wrapper (needs no permission)
 *
 * @module
 */
import { DEFAULT_STATE_DIR, permissionFlags, RUNTIME_FLAGS } from "../lib/cli/permissions.ts";

/**
 * Flags of `deno run` besides the permissions, so the wrapper behaves like the compiled binary:
 * no permission prompts (a missing permission is an error, as in a binary), no config file or
 * lock file picked up from around the sources, no type check.
 */
export const RUN_FLAGS = ["--no-config", "--no-lock", "--no-check", ...RUNTIME_FLAGS];

function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The wrapper script for a deno binary and the directory holding main.ts and lib/. */
export function wrapperScript(deno: string, sourceDir: string): string {
  const args = [deno, "run", ...RUN_FLAGS, ...permissionFlags(DEFAULT_STATE_DIR)];
  return [
    "#!/bin/sh",
    "# ctre installed from source by scripts/install.sh --from-source: deno run with exactly the",
    "# shipped permissions (lib/cli/permissions.ts).",
    `exec ${[...args, `${sourceDir}/main.ts`].map(quote).join(" ")} "$@"`,
    "",
  ].join("\n");
}

if (import.meta.main) {
  const [deno, sourceDir, ...rest] = Deno.args;
  if (!deno || !sourceDir || rest.length) {
    console.error("Usage: deno run scripts/source_wrapper.ts DENO SOURCE_DIR");
    Deno.exit(2);
  }
  console.log(wrapperScript(deno, sourceDir).trimEnd());
}
