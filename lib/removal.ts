/**
 * Removing images in batches: one `ctr image rm` per namespace and chunk, with each ref's
 * outcome read back from what ctr printed (stdout lists the deleted refs; stderr warns about
 * missing ones and logs each failure, and ctr goes on with the rest).
 *
 * @module
 */
import type { Ctr } from "./ctr.ts";
import { commandText } from "./ctr.ts";

export const REMOVE_CHUNK = 100;

export interface RemovalOutcome {
  removed: string[];
  /** Already gone when we asked (someone else removed them). */
  missing: string[];
  failed: { ref: string; reason: string }[];
}

/** Whether a log line names `ref` as a whole word (not as part of a longer ref). */
function mentions(line: string, ref: string): boolean {
  for (let at = line.indexOf(ref); at >= 0; at = line.indexOf(ref, at + 1)) {
    const before = at === 0 ? " " : line[at - 1]!;
    const after = line[at + ref.length] ?? " ";
    if (/[\s"'=]/.test(before) && /[\s"':]/.test(after)) return true;
  }
  return false;
}

/** Reads one `ctr image rm` run: which refs went, which were missing, which failed and why. */
export function readRemoval(
  refs: string[],
  r: { code: number; stdout: string; stderr: string },
  args: string[],
): RemovalOutcome {
  const deleted = new Set(r.stdout.split("\n").map((l) => l.trim()));
  const errLines = r.stderr.split("\n").filter((l) => l.trim() !== "");
  const out: RemovalOutcome = { removed: [], missing: [], failed: [] };
  for (const ref of refs) {
    if (deleted.has(ref)) {
      out.removed.push(ref);
      continue;
    }
    const mine = errLines.filter((l) => mentions(l, ref));
    if (mine.some((l) => l.includes(`${ref}: image not found`))) {
      out.missing.push(ref);
    } else {
      const why = mine.at(-1) ?? errLines.at(-1) ?? "not reported as deleted";
      out.failed.push({
        ref,
        reason: `${commandText(args.slice(0, 4))} … exited with code ${r.code}: ${why.trim()}`,
      });
    }
  }
  return out;
}

/** Removes `refs` of namespace `ns`, REMOVE_CHUNK refs per ctr process. */
export async function removeImages(
  ctr: Ctr,
  ns: string,
  refs: string[],
  opts: { sync?: boolean } = {},
): Promise<RemovalOutcome> {
  const total: RemovalOutcome = { removed: [], missing: [], failed: [] };
  for (let i = 0; i < refs.length; i += REMOVE_CHUNK) {
    const chunk = refs.slice(i, i + REMOVE_CHUNK);
    // --sync waits for garbage collection (after the last ref), so a re-measure sees the space.
    const args = ["-n", ns, "image", "rm", ...(opts.sync ? ["--sync"] : []), ...chunk];
    let outcome: RemovalOutcome;
    try {
      outcome = readRemoval(chunk, await ctr.run(args), args);
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      outcome = { removed: [], missing: [], failed: chunk.map((ref) => ({ ref, reason })) };
    }
    total.removed.push(...outcome.removed);
    total.missing.push(...outcome.missing);
    total.failed.push(...outcome.failed);
  }
  return total;
}
