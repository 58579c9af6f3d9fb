/**
 * Removing images in batches: per namespace and chunk, a re-read of the chunk's refs, then one
 * removal whose outcome per ref the gateway reads back from ctr (lib/ctr/image_removal.ts),
 * followed by the namespace's image events (repoint_watch.ts) to catch a ref re-pointed after
 * the re-read.
 *
 * @module
 */
import type { Containerd, ImageRemoval } from "../ctr/gateway.ts";
import { type PlannedRef, splitByTarget } from "../policy/recheck.ts";
import { PROBE_LABEL, RepointWatch } from "./repoint_watch.ts";

export const REMOVE_CHUNK = 100;

export interface RemovalOutcome extends ImageRemoval {
  /**
   * Kept at the last second: the ref points to another digest (`now`) than planned; `now` is
   * null when an image event said it was re-pointed but not to what.
   */
  moved: { ref: string; now: string | null }[];
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

/** How {@linkcode removeImages} goes about it. */
export interface RemovalOptions {
  /** Wait for the garbage collection after each chunk. */
  sync?: boolean;
  /** Hears how many refs each chunk settled (for a progress line). */
  onChunk?: (refs: number) => void;
  /**
   * Follow the namespace's image events while a chunk is removed (repoint_watch.ts; default
   * true). Off only in unit tests of the bare removal.
   */
  watch?: boolean;
}

/**
 * Removes the planned refs of namespace `ns`, REMOVE_CHUNK refs per ctr process. Right before
 * each chunk's removal, one listing of the chunk's refs re-reads them: a ref that now points to
 * another digest than planned (re-pointed by a pull meanwhile) is kept, one that is no longer
 * listed is already gone. `onChunk` hears how many refs each chunk settled (for a progress line).
 */
export async function removeImages(
  containerd: Containerd,
  ns: string,
  refs: PlannedRef[],
  opts: RemovalOptions = {},
): Promise<RemovalOutcome> {
  const total = empty();
  for (let i = 0; i < refs.length; i += REMOVE_CHUNK) {
    const planned = refs.slice(i, i + REMOVE_CHUNK);
    let chunk = planned.map((p) => p.ref);
    let outcome = empty();
    const watch = opts.watch === false ? null : await RepointWatch.start(containerd, ns, chunk);
    if (watch === null && opts.watch !== false) outcome.unwatched++;
    try {
      const split = splitByTarget(planned, await containerd.listImages(ns, chunk));
      chunk = split.go;
      outcome.missing.push(...split.gone);
      outcome.moved.push(...split.moved);
      if (watch) {
        // Events that arrived since the probe: moved after (or while) the re-read ran.
        const touched = watch.touched();
        for (const ref of chunk.filter((r) => touched.has(r))) {
          outcome.moved.push({ ref, now: null });
        }
        chunk = chunk.filter((r) => !touched.has(r));
      }
      if (chunk.length > 0) {
        const r = await containerd.removeImages(ns, chunk, opts.sync ?? false);
        outcome.removed.push(...r.removed);
        outcome.missing.push(...r.missing);
        outcome.failed.push(...r.failed);
      }
      if (watch) await settleWatch(containerd, ns, watch, outcome);
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
    opts.onChunk?.(planned.length);
  }
  return total;
}

/**
 * Ends a chunk's watch: refs re-pointed before their deletion move from `removed` to `lost` (and
 * `failed`); the probe label comes off a probe ref that was kept.
 */
async function settleWatch(
  containerd: Containerd,
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
    await containerd.labelImage(ns, probe, PROBE_LABEL, "").catch(() => {});
  }
}
