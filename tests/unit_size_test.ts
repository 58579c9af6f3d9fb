/**
 * Units you can read at once (ARCHITECTURE.md): in lib/, no function or method over 80 lines and
 * no class over 120, read from the code as `deno fmt` lays it out (a top-level unit starts at
 * column 0 and ends at the first `}` there; a method starts at column 2 inside a class and ends at
 * the first `}` there).
 */
import assert from "node:assert/strict";
import { libSources } from "./support/lib_files.ts";

const MAX_FUNCTION = 80;
const MAX_CLASS = 120;

const TOP =
  /^(?:export )?(?:default )?(?:async )?(?:function\*? (\w+)|(?:abstract )?class (\w+)|const (\w+) = (?:async )?(?:\([^)]*\)|\w+)(?:: [^=]+)? =>)/;
const METHOD =
  /^ {2}(?:(?:static|async|get|set|private|protected|public|readonly|override) )*(#?\w+)\s*(?:<[^>]*>)?\(/;

/** Units of `text` longer than allowed, as `name: N lines`. */
export function oversized(text: string): string[] {
  const lines = text.split("\n");
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = TOP.exec(lines[i]!);
    if (!m) continue;
    const end = lines.findIndex((l, j) => j > i && /^[})\]]/.test(l));
    if (end < 0) continue;
    const isClass = m[2] !== undefined;
    const name = m[1] ?? m[2] ?? m[3]!;
    const length = end - i + 1;
    if (length > (isClass ? MAX_CLASS : MAX_FUNCTION)) out.push(`${name}: ${length} lines`);
    if (isClass) {
      for (let k = i + 1; k < end; k++) {
        const mm = METHOD.exec(lines[k]!);
        if (!mm || !lines[k]!.trimEnd().endsWith("{")) continue;
        const stop = lines.findIndex((l, j) => j > k && /^ {2}[})\]]/.test(l));
        if (stop > 0 && stop - k + 1 > MAX_FUNCTION) {
          out.push(`${name}.${mm[1]}: ${stop - k + 1} lines`);
        }
      }
    }
    i = end;
  }
  return out;
}

Deno.test("lib/: no function over 80 lines, no class over 120", async () => {
  const found: string[] = [];
  for (const [f, text] of await libSources()) {
    for (const o of oversized(text)) found.push(`${f} ${o}`);
  }
  assert.deepEqual(found, []);
});

Deno.test("oversized() measures functions, arrow constants, classes and their methods", () => {
  const body = (n: number) => Array.from({ length: n }, () => "  x();").join("\n");
  const method = (n: number) => Array.from({ length: n }, () => "    x();").join("\n");
  const text = [
    `export function long() {\n${body(80)}\n}`,
    `function short() {\n${body(10)}\n}`,
    `const arrow = (a: number) => {\n${body(79)}\n};`,
    `export class Big {\n  run(): void {\n${method(79)}\n  }\n${body(40)}\n}`,
  ].join("\n\n");
  assert.deepEqual(oversized(text), [
    "long: 82 lines",
    "arrow: 81 lines",
    "Big: 123 lines",
    "Big.run: 81 lines",
  ]);
});
