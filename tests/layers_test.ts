/**
 * The import rule of ARCHITECTURE.md, read from the code: a file of lib/ imports only files of its
 * own folder or of a lower layer, and the policy (lib/policy/) is pure: it never imports ctr/,
 * never calls `Deno.*`.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { libSources, ROOT } from "./support/lib_files.ts";

/** Layer of each folder of lib/: a file may import its own folder and lower layers only. */
export const LAYERS: Record<string, number> = {
  core: 0,
  ctr: 1,
  state: 1,
  policy: 2,
  node: 3,
  prune: 4,
  recorder: 4,
  // ops above prune: `ctre df` reuses prune's planning pass.
  ops: 5,
  cli: 6,
};

/** Relative imports of `text` (static, `import type`, re-exports and dynamic `import()`). */
export function importsOf(text: string): string[] {
  const specs: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) {
    specs.push(m[1]!);
  }
  return specs;
}

function folderOf(path: string): string {
  return path.split("/")[1] ?? "";
}

/** The violations of the rule in `files` (path → text). */
export function violations(files: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [path, text] of files) {
    const from = folderOf(path);
    if (!(from in LAYERS)) {
      out.push(`${path}: folder lib/${from}/ has no layer (add it to LAYERS and ARCHITECTURE.md)`);
      continue;
    }
    for (const spec of importsOf(text)) {
      const target = relative(ROOT, normalize(join(ROOT, dirname(path), spec)));
      if (!target.startsWith("lib/")) {
        out.push(`${path}: imports ${target}, outside lib/`);
        continue;
      }
      const to = folderOf(target);
      if (to === from) continue;
      if (!(to in LAYERS) || LAYERS[to]! >= LAYERS[from]!) {
        out.push(
          `${path} (${from}, layer ${LAYERS[from]}) imports ${target} (layer ${LAYERS[to]})`,
        );
      }
      if (from === "policy" && to === "ctr") {
        out.push(`${path}: the policy imports ctr (${target})`);
      }
    }
    if (from === "policy") {
      const code = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
      if (/\bDeno\./.test(code)) out.push(`${path}: the policy calls Deno.*`);
    }
  }
  return out;
}

Deno.test("lib/: every import goes to the same folder or a lower layer; the policy is pure", async () => {
  const files = await libSources();
  assert.ok(files.size > 40, `read ${files.size} files of lib/`);
  assert.deepEqual(violations(files), []);
});

Deno.test("violations() finds an upward import, a policy file importing ctr and one calling Deno", () => {
  const found = violations(
    new Map([
      ["lib/core/units.ts", 'import { x } from "../prune/prune.ts";'],
      [
        "lib/policy/plan.ts",
        'import type { Ctr } from "../ctr/runner.ts";\nDeno.readTextFile("x");',
      ],
      ["lib/policy/ok.ts", '// Deno.exit is only named here\nimport { y } from "./plan.ts";'],
      ["lib/prune/prune.ts", 'const m = await import("../policy/plan.ts");'],
    ]),
  );
  assert.deepEqual(found, [
    "lib/core/units.ts (core, layer 0) imports lib/prune/prune.ts (layer 4)",
    "lib/policy/plan.ts: the policy imports ctr (lib/ctr/runner.ts)",
    "lib/policy/plan.ts: the policy calls Deno.*",
  ]);
});
