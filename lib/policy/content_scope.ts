/**
 * In which namespaces prune runs `ctr content prune references` afterwards. Not in Docker's
 * `moby` unless asked: dockerd (containerd image store) keeps the layer blobs of its images for
 * `docker save`, `docker push` and `docker commit`, and content prune strips them from the
 * images ctre kept.
 *
 * @module
 */

/** Docker's namespace with the containerd image store. */
const MOBY_NAMESPACE = "moby";

/** Why content prune skips namespace moby by default (printed and in the JSON document). */
export const MOBY_CONTENT_PRUNE_SKIPPED =
  "skipped: dockerd needs the layer blobs of the images it keeps (docker save/push/commit); " +
  "--content-prune-moby runs it anyway";

export interface ContentPruneScope {
  /** Namespaces to run content prune in. */
  prune: string[];
  /** Namespaces left alone, with why. */
  skipped: { namespace: string; why: string }[];
}

/** Splits `namespaces` into those content prune runs in and those it skips. */
export function contentPrunePlan(
  namespaces: readonly string[],
  opts: { contentPruneMoby: boolean },
): ContentPruneScope {
  const out: ContentPruneScope = { prune: [], skipped: [] };
  for (const ns of namespaces) {
    if (ns === MOBY_NAMESPACE && !opts.contentPruneMoby) {
      out.skipped.push({ namespace: ns, why: MOBY_CONTENT_PRUNE_SKIPPED });
    } else out.prune.push(ns);
  }
  return out;
}

/**
 * Whether prune's content prune runs in a namespace of `namespaces` (lib/policy/disk.ts counts
 * the layer blobs it frees there), or null when content prune is off.
 */
export function contentPruneRuns(
  namespaces: readonly string[],
  opts: { contentPrune: boolean; contentPruneMoby?: boolean },
): ((ns: string) => boolean) | null {
  if (!opts.contentPrune) return null;
  const scope = contentPrunePlan(namespaces, { contentPruneMoby: opts.contentPruneMoby ?? false });
  return (ns) => scope.prune.includes(ns);
}
