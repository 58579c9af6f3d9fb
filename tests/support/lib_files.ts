/** The sources of lib/, for the tests that read the code's structure (layers, unit sizes). */
import { dirname, join, normalize } from "node:path";

/** The repository's root. */
export const ROOT = normalize(join(dirname(new URL(import.meta.url).pathname), "..", ".."));

/** Every .ts file below lib/, as a path relative to the root, sorted; with its text. */
export async function libSources(dir = "lib"): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const e of Deno.readDir(join(ROOT, dir))) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) { for (const [p, t] of await libSources(path)) out.set(p, t); }
    else if (e.name.endsWith(".ts")) out.set(path, await Deno.readTextFile(join(ROOT, path)));
  }
  return new Map([...out].sort(([a], [b]) => a.localeCompare(b)));
}
