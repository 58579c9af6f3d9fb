/**
 * Removing images in batches: per namespace and chunk, a re-read of the chunk's refs, then one
 * removal whose outcome per ref the gateway reads back from ctr (lib/ctr/image_removal.ts).
 *
 * @module
 */
import type { Containerd, ImageRemoval } from "../ctr/gateway.ts";
import { type PlannedRef, splitByTarget } from "../policy/recheck.ts";

export const REMOVE_CHUNK = 100;

export interface RemovalOutcome extends ImageRemoval {
  /** Kept at the last second: the ref points to another digest (`now`) than planned. */
  moved: { ref: string; now: string }[];
}

function empty(): RemovalOutcome {
  return { removed: [], missing: [], failed: [], moved: [] };
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
  opts: { sync?: boolean; onChunk?: (refs: number) => void } = {},
): Promise<RemovalOutcome> {
  const total = empty();
  for (let i = 0; i < refs.length; i += REMOVE_CHUNK) {
    const planned = refs.slice(i, i + REMOVE_CHUNK);
    let chunk = planned.map((p) => p.ref);
    let outcome = empty();
    try {
      const split = splitByTarget(planned, await containerd.listImages(ns, chunk));
      chunk = split.go;
      outcome.missing.push(...split.gone);
      outcome.moved.push(...split.moved);
      if (chunk.length > 0) {
        const r = await containerd.removeImages(ns, chunk, opts.sync ?? false);
        outcome.removed.push(...r.removed);
        outcome.missing.push(...r.missing);
        outcome.failed.push(...r.failed);
      }
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      outcome = { ...empty(), failed: chunk.map((ref) => ({ ref, reason })) };
    }
    total.removed.push(...outcome.removed);
    total.missing.push(...outcome.missing);
    total.failed.push(...outcome.failed);
    total.moved.push(...outcome.moved);
    opts.onChunk?.(planned.length);
  }
  return total;
}
