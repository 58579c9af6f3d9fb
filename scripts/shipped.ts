// deno-lint-ignore-file no-console
/**
 * Runs or compiles ctre with exactly the shipped permission flags, taken from
 * lib/cli/permissions.ts (the same function the tests use).
 *
 *   deno task start prune --dry-run      # deno run <shipped flags> main.ts prune --dry-run
 *   deno task compile                    # dist/ctre-x86_64-linux and dist/ctre-aarch64-linux
 *
 * @module
 */
import { DEFAULT_STATE_DIR, permissionFlags, RUNTIME_FLAGS } from "../lib/cli/permissions.ts";

export const TARGETS = {
  "x86_64-unknown-linux-gnu": "dist/ctre-x86_64-linux",
  "aarch64-unknown-linux-gnu": "dist/ctre-aarch64-linux",
} as const;

/** The argument vector of `deno compile` for one target. */
export function compileArgs(target: keyof typeof TARGETS, minFreeRoot?: string): string[] {
  return [
    "compile",
    "--no-check",
    ...RUNTIME_FLAGS,
    ...flags(minFreeRoot),
    "--target",
    target,
    "--output",
    TARGETS[target],
    "main.ts",
  ];
}

async function deno(args: string[]): Promise<number> {
  const child = new Deno.Command("deno", { args }).spawn();
  return (await child.status).code;
}

/** The shipped flags, plus those of disk-pressure mode by free space when asked for. */
export function flags(minFreeRoot?: string): string[] {
  return permissionFlags(DEFAULT_STATE_DIR, minFreeRoot === undefined ? {} : { minFreeRoot });
}

async function compile(minFreeRoot?: string): Promise<number> {
  for (const target of Object.keys(TARGETS) as (keyof typeof TARGETS)[]) {
    const out = await new Deno.Command("deno", {
      args: compileArgs(target, minFreeRoot),
      stdout: "inherit",
      stderr: "piped",
    }).output();
    if (out.code !== 0) {
      // deno compile ends a failed download with a Rust backtrace: keep only its reason.
      // deno-lint-ignore no-control-regex
      const text = new TextDecoder().decode(out.stderr).replace(/\x1b\[[0-9;]*m/g, "");
      const reason = text.split("\n").filter((l) => /error|failed/i.test(l)).slice(0, 2)
        .map((l) => l.trim()).join(" ") || `exit code ${out.code}`;
      console.error(
        `Cannot compile ctre for ${target}: ${reason}\n` +
          `deno compile downloads the Deno runtime (denort) for each target: it needs network ` +
          `access to Deno's release server.`,
      );
      return 1;
    }
    console.error(`Built ${TARGETS[target]} with ${flags(minFreeRoot).join(" ")}`);
  }
  return 0;
}

if (import.meta.main) {
  const [mode, ...rest] = Deno.args;
  if (mode === "run") {
    const run = [
      "run",
      ...RUNTIME_FLAGS,
      ...permissionFlags(DEFAULT_STATE_DIR),
      "main.ts",
      ...rest,
    ];
    Deno.exit(await deno(run));
  } else if (mode === "compile" && (rest.length === 0 || rest[0] === "--min-free-root")) {
    // deno task compile --min-free-root /var/lib/containerd: a build that can use prune --min-free.
    if (rest.length === 1 || rest.length > 2) {
      console.error("Usage: deno task compile [--min-free-root DIR]");
      Deno.exit(2);
    }
    Deno.exit(await compile(rest[1]));
  } else {
    console.error("Usage: deno run scripts/shipped.ts run|compile [ARGS...]");
    Deno.exit(2);
  }
}
