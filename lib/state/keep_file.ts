/**
 * Keep patterns from files: one glob per line, `#` starts a comment. `<state-dir>/keep` is read
 * when present, so it works under the shipped permissions.
 *
 * @module
 */
import { permissionHint } from "./state_files.ts";
import { InputError } from "../core/errors.ts";
import { quoteCut } from "../core/text.ts";

/** The longest keep pattern accepted: a ref is at most a few hundred characters. */
export const MAX_KEEP_PATTERN = 1024;

/** Why `pattern` cannot be a keep pattern, or null when it can. */
export function keepPatternProblem(pattern: string): string | null {
  if (pattern.length > MAX_KEEP_PATTERN) {
    return `pattern too long (${pattern.length} characters, at most ${MAX_KEEP_PATTERN})`;
  }
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(pattern)) {
    return `pattern ${quoteCut(pattern)} has control characters`;
  }
  return null;
}

/**
 * The patterns in a keep file's text. A line that cannot be a pattern throws an InputError
 * naming `source` and the line: a keep file ctre cannot read whole must not be half-applied.
 */
export function parseKeepFile(text: string, source = "keep file"): string[] {
  const out: string[] = [];
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") continue;
    const problem = keepPatternProblem(line);
    if (problem !== null) {
      throw new InputError(`Keep file ${quoteCut(source, 200)} line ${i + 1}: ${problem}`);
    }
    out.push(line);
  }
  return out;
}

/** Reads a keep file; a missing file is an error unless `optional`. */
export async function readKeepFile(path: string, optional: boolean): Promise<string[]> {
  try {
    const text = await Deno.readTextFile(path);
    return parseKeepFile(text, path);
  } catch (e) {
    if (e instanceof InputError) throw e;
    if (optional && e instanceof Deno.errors.NotFound) return [];
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot read keep file "${path}": not found`);
    }
    throw permissionHint(e, path, "read");
  }
}
