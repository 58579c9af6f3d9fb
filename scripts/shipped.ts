// deno-lint-ignore-file no-console
/**
 * Runs or compiles ctre with exactly the shipped permission flags, taken from
 * lib/permissions.ts (the same function the tests use).
 *
 *   deno task start prune --dry-run      # deno run <shipped flags> main.ts prune --dry-run
 *   deno task compile                    # dist/ctre-x86_64-linux and dist/ctre-aarch64-linux
 *
 * @module
 */
import { DEFAULT_STATE_DIR, permissionFlags } from "../lib/permissions.ts";

export const TARGETS = {
  "x86_64-unknown-linux-gnu": "dist/ctre-x86_64-linux",
  "aarch64-unknown-linux-gnu": "dist/ctre-aarch64-linux",
} as const;

/** The argument vector of `deno compile` for one target. */
export function compileArgs(target: keyof typeof TARGETS): string[] {
  return [
    "compile",
    "--no-check",
    ...permissionFlags(DEFAULT_STATE_DIR),
    "--target",
    target,
    "--output",
    TARGETS[target],
    "main.ts",
  ];
}

async function deno(args: string[]): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), { args }).spawn();
  return (await child.status).code;
}

async function compile(): Promise<number> {
  for (const target of Object.keys(TARGETS) as (keyof typeof TARGETS)[]) {
    const code = await deno(compileArgs(target));
    if (code !== 0) {
      // deno compile prints its own reason; say what it means for the operator.
      console.error(
        `Cannot compile ctre for ${target}: deno compile exited with code ${code} ` +
          `(it downloads the Deno runtime for the target, so it needs network access)`,
      );
      return code;
    }
  }
  return 0;
}

if (import.meta.main) {
  const [mode, ...rest] = Deno.args;
  if (mode === "run") {
    Deno.exit(await deno(["run", ...permissionFlags(DEFAULT_STATE_DIR), "main.ts", ...rest]));
  } else if (mode === "compile") {
    Deno.exit(await compile());
  } else {
    console.error("Usage: deno run scripts/shipped.ts run|compile [ARGS...]");
    Deno.exit(2);
  }
}
