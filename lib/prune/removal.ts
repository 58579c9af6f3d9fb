/**
 * Removing images in batches: one `ctr image rm` per namespace and chunk, with each ref's
 * outcome read back from what ctr printed (stdout lists the deleted refs; stderr warns about
 * missing ones and logs each failure, and ctr goes on with the rest).
 *
 * @module
 */
import type { Ctr } from "../ctr/runner.ts";
import { commandText, ctrOk } from "../ctr/runner.ts";
import { parseImageLs } from "../ctr/listings.ts";
import { type PlannedRef, splitByTarget } from "../policy/recheck.ts";
import { PROBE_LABEL, RepointWatch } from "./repoint_watch.ts";

export const REMOVE_CHUNK = 100;

export interface RemovalOutcome {
  removed: string[];
  /** Already gone when we asked (someone else removed them). */
  missing: string[];
  failed: { ref: string; reason: string }[];
  /** Kept at the last second: the ref points to another digest (`now`) than planned. */
  moved: { ref: string; now: string }[];
  /**
   * Deleted, but the record deleted was not the planned one: the ref was re-pointed between the
   * last-second re-read and the deletion (repoint_watch.ts). Also listed in `failed`.
   */
  lost: string[];
  /** Chunks removed without the watch (no probe event seen): a re-point would go unnoticed. */
  unwatched: number;
}

function empty(): RemovalOutcome {
  return { removed: [], missing: [], failed: [], moved: [], lost: [], unwatched: 0 };
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
): Omit<RemovalOutcome, "moved" | "lost" | "unwatched"> {
  const deleted = new Set(r.stdout.split("\n").map((l) => l.trim()));
  const errLines = r.stderr.split("\n").filter((l) => l.trim() !== "");
  const out: Omit<RemovalOutcome, "moved" | "lost" | "unwatched"> = {
    removed: [],
    missing: [],
    failed: [],
  };
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

/**
 * The filter arguments of `ctr image ls` that list exactly `refs` (several are OR'ed). Quoted,
 * so a ref with `@sha256:…` or other filter syntax is taken literally.
 */
export function nameFilters(refs: string[]): string[] {
  return refs.map((ref) => `name==${JSON.stringify(ref)}`);
}

/**
 * Removes the planned refs of namespace `ns`, REMOVE_CHUNK refs per ctr process. Right before
 * each chunk's `ctr image rm`, one `ctr image ls name==…` re-reads the chunk's refs: a ref that
 * now points to another digest than planned (re-pointed by a pull meanwhile) is kept, one that is
 * no longer listed is already gone. With `check: false` (tests of the bare removal) the re-read
 * is skipped.
 */
export async function removeImages(
  ctr: Ctr,
  ns: string,
  refs: PlannedRef[],
  opts: { sync?: boolean; check?: boolean; watch?: boolean } = {},
): Promise<RemovalOutcome> {
  const total = empty();
  for (let i = 0; i < refs.length; i += REMOVE_CHUNK) {
    const planned = refs.slice(i, i + REMOVE_CHUNK);
    let chunk = planned.map((p) => p.ref);
    let outcome = empty();
    const watch = opts.watch === false ? null : await RepointWatch.start(ctr, ns, chunk);
    if (watch === null && opts.watch !== false) outcome.unwatched++;
    try {
      if (opts.check !== false) {
        const listed = parseImageLs(
          await ctrOk(ctr, ["-n", ns, "image", "ls", ...nameFilters(chunk)]),
        );
        const split = splitByTarget(planned, listed);
        chunk = split.go;
        outcome.missing.push(...split.gone);
        outcome.moved.push(...split.moved);
      }
      if (watch) {
        // Events that arrived since the probe: moved after (or while) the re-read ran.
        const touched = watch.touched();
        for (const ref of chunk.filter((r) => touched.has(r))) {
          outcome.moved.push({ ref, now: "a newer image (re-pointed during the removal)" });
        }
        chunk = chunk.filter((r) => !touched.has(r));
      }
      if (chunk.length > 0) {
        // --sync waits for garbage collection (after the last ref), so a re-measure sees it.
        const args = ["-n", ns, "image", "rm", ...(opts.sync ? ["--sync"] : []), ...chunk];
        const r = readRemoval(chunk, await ctr.run(args), args);
        outcome.removed.push(...r.removed);
        outcome.missing.push(...r.missing);
        outcome.failed.push(...r.failed);
      }
      if (watch) await settleWatch(ctr, ns, watch, outcome);
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      outcome = { ...empty(), failed: chunk.map((ref) => ({ ref, reason })) };
    } finally {
      watch?.stream.stop();
    }
    total.removed.push(...outcome.removed);
    total.missing.push(...outcome.missing);
    total.failed.push(...outcome.failed);
    total.moved.push(...outcome.moved);
    total.lost.push(...outcome.lost);
    total.unwatched += outcome.unwatched;
  }
  return total;
}

/**
 * Ends a chunk's watch: refs re-pointed before their deletion move from `removed` to `lost` (and
 * `failed`); the probe label comes off a probe ref that was kept.
 */
async function settleWatch(
  ctr: Ctr,
  ns: string,
  watch: RepointWatch,
  outcome: RemovalOutcome,
): Promise<void> {
  const lost = new Set(await watch.finish(outcome.removed));
  outcome.removed = outcome.removed.filter((ref) => !lost.has(ref));
  for (const ref of lost) {
    outcome.lost.push(ref);
    outcome.failed.push({
      ref,
      reason: "it was re-pointed (pulled, imported or tagged) while ctre removed it, so the " +
        "image deleted was the new one; pull it again",
    });
  }
  const probe = watch.probed;
  if (probe !== null && !outcome.removed.includes(probe) && !lost.has(probe)) {
    await ctr.run(["-n", ns, "image", "label", probe, `${PROBE_LABEL}=`]);
  }
}
