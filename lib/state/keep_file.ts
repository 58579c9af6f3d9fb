/**
 * Keep patterns from files: one glob per line, `#` starts a comment. `<state-dir>/keep` is read
 * when present, so it works under the shipped permissions.
 *
 * @module
 */
import { permissionHint } from "./state_files.ts";

/** The patterns in a keep file's text. */
export function parseKeepFile(text: string): string[] {
  return text.split("\n").map((l) => l.replace(/#.*/, "").trim()).filter((l) => l !== "");
}

/** Reads a keep file; a missing file is an error unless `optional`. */
export async function readKeepFile(path: string, optional: boolean): Promise<string[]> {
  try {
    return parseKeepFile(await Deno.readTextFile(path));
  } catch (e) {
    if (optional && e instanceof Deno.errors.NotFound) return [];
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot read keep file "${path}": not found`);
    }
    throw permissionHint(e, path, "read");
  }
}
