/**
 * `--keep-latest N`: within a namespace, the N newest images of each repository are kept
 * (`kept-latest`), whatever their age. Newest by the age `ctr content ls` shows for the image's
 * target (a lower bound in whole units, see units.ts); an image whose target has no content
 * entry counts as newest (nothing says it is old). Ties, common as ctr's ages are coarse
 * ("3 weeks"), go to the most recently used (start, stop or pull), then to the greater ref, so
 * exactly N are kept per repository. An image belongs to every repository its refs name
 * (`sha256:<id>` refs name none).
 *
 * @module
 */
import { repositoryOf } from "./lineage.ts";

export interface LatestCandidate {
  digest: string;
  refs: readonly string[];
  /** Content age of the target, lower bound in seconds; null when unknown. */
  ageSeconds: number | null;
  /** Latest recorded use (start, stop or pull), unix seconds, or null. */
  lastUse: number | null;
}

/** The digests among the `n` newest of each repository of `images` (one namespace). */
export function newestPerRepository(images: readonly LatestCandidate[], n: number): Set<string> {
  const kept = new Set<string>();
  if (n <= 0) return kept;
  const byRepo = new Map<string, LatestCandidate[]>();
  for (const image of images) {
    const repos = new Set(image.refs.map(repositoryOf).filter((r) => r !== null));
    for (const repo of repos) {
      const group = byRepo.get(repo);
      if (group === undefined) byRepo.set(repo, [image]);
      else group.push(image);
    }
  }
  for (const group of byRepo.values()) {
    const ordered = [...group].sort((a, b) =>
      (a.ageSeconds ?? -1) - (b.ageSeconds ?? -1) ||
      (b.lastUse ?? -1) - (a.lastUse ?? -1) ||
      (maxRef(a) < maxRef(b) ? 1 : maxRef(a) > maxRef(b) ? -1 : 0)
    );
    for (const image of ordered.slice(0, n)) kept.add(image.digest);
  }
  return kept;
}

function maxRef(image: LatestCandidate): string {
  return [...image.refs].sort().at(-1) ?? "";
}
