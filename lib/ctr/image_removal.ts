/**
 * What one `ctr image rm` printed, per ref: stdout lists the deleted refs; stderr warns about
 * missing ones and logs each failure, and ctr goes on with the rest (shapes of 1.6 to 2.x in
 * tests/testdata/ctr-*).
 *
 * @module
 */
import { commandText, type CtrResult } from "./runner.ts";

/** Each ref's outcome of one `ctr image rm`. */
export interface ImageRemoval {
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

/** Reads one `ctr image rm` run of `args`: which refs went, which were missing, which failed. */
export function readRemoval(refs: string[], r: CtrResult, args: string[]): ImageRemoval {
  const deleted = new Set(r.stdout.split("\n").map((l) => l.trim()));
  const errLines = r.stderr.split("\n").filter((l) => l.trim() !== "");
  const out: ImageRemoval = { removed: [], missing: [], failed: [] };
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
