/**
 * The decision, as a pure function: given what containerd holds, the usage DB and the policy,
 * which images may go and why each other one stays. Decisions are per (namespace, digest): all
 * refs of a digest go together or stay together.
 *
 * @module
 */
import type { NamespaceSnapshot } from "../core/containerd.ts";
import type { ImageDisk } from "./disk.ts";
import { newestPerRepository } from "./keep_latest.ts";
import { type PinEntry, rememberedSince } from "../state/pin_memory.ts";
import { lastPullOf } from "../state/pull_db.ts";
import { repositoryOf, resolveUsers, type User } from "./lineage.ts";
import { lastUse, lastUseOf, type Usage } from "../state/usage_db.ts";

export type Reason =
  | "in-use"
  | "pinned"
  | "kept-by-pattern"
  | "kept-latest"
  | "recently-used"
  | "too-young"
  | "used-during-double-check"
  | "namespace-excluded"
  | "within-budget"
  | "prune";

export interface Policy {
  /** Now, in unix seconds. */
  now: number;
  /** Content age (seconds) an image must reach before it may go. */
  minAge: number;
  /** A recorded start or stop this recent (seconds) keeps an image. */
  usedWithin: number;
  /** Glob patterns on refs that protect an image. */
  keep: readonly string[];
}

export interface ImagePlan {
  ns: string;
  digest: string;
  refs: string[];
  size: number;
  ageSeconds: number | null;
  ageText: string | null;
  lastStart: number | null;
  lastStop: number | null;
  decision: "prune" | "keep";
  reason: Reason;
  /** For in-use: the containers using it. */
  containers?: string[];
  /** For in-use: who keeps it and how that was found (lib/policy/lineage.ts). */
  users?: User[];
  /** For kept-by-pattern: the pattern that matched. */
  pattern?: string;
  /** Last pull (image ref created or updated) recorded for any of its refs, unix seconds. */
  lastPull?: number | null;
  /** For pinned by pin memory (label gone): when ctre first saw it pinned. */
  pinnedRememberedSince?: number;
  /** Its bytes on disk (lib/policy/disk.ts); absent when not measured. */
  disk?: ImageDisk;
  /** Disk-pressure mode: 1 = least recently used of the prunable images. */
  lruRank?: number;
  /** Disk-pressure mode: whether the budget needed this image to go (by estimate). */
  budgetNeeded?: boolean;
}

export interface Plan {
  images: ImagePlan[];
  warnings: string[];
}

export const PINNED_LABELS: ReadonlyMap<string, string | null> = new Map([
  ["io.cri-containerd.pinned", "pinned"],
  ["io.cattle.k3s.pinned", null], // any value
]);

/** Whether image labels pin it (see {@linkcode PINNED_LABELS}). */
export function pinnedByLabel(labels: ReadonlyMap<string, string>): boolean {
  return [...PINNED_LABELS].some(([k, v]) => labels.has(k) && (v === null || labels.get(k) === v));
}

/** Inputs beyond the usage DB, each optional (absent: the rule does not apply). */
export interface PlanExtras {
  /** Last pulls by usageKey (pull_db.ts): a pull within `usedWithin` keeps as recently-used. */
  pulls?: Map<string, number>;
  /** Pin memory (pin_memory.ts): remembered within `pinMemory` keeps as pinned. */
  pins?: Map<string, PinEntry>;
  /** Seconds a remembered pin protects after it was last seen (default 30 days). */
  pinMemory?: number;
  /** Keep the N newest images of each repository (kept-latest); 0 or absent: off. */
  keepLatest?: number;
}

export const DEFAULT_PIN_MEMORY = 30 * 86400;

/** A glob (`*` any run of characters, `?` one) as an anchored RegExp. */
export function globToRegExp(glob: string): RegExp {
  const body = [...glob].map((c) =>
    c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\]/g, "\\$&")
  ).join("");
  return new RegExp(`^${body}$`);
}

export { repositoryOf };

/** Decides every image of one namespace. */
export function planNamespace(
  snap: NamespaceSnapshot,
  usage: Map<string, Usage>,
  policy: Policy,
  extras: PlanExtras = {},
): Plan {
  const warnings: string[] = [];
  const byDigest = new Map<string, typeof snap.images>();
  for (const image of snap.images) {
    const group = byDigest.get(image.digest) ?? [];
    group.push(image);
    byDigest.set(image.digest, group);
  }
  const resolved = resolveUsers(snap);
  warnings.push(...resolved.warnings);
  const usersOf = resolved.usersOf;
  const patterns = policy.keep.map((p) => ({ p, re: globToRegExp(p) }));
  const pulls = extras.pulls ?? new Map<string, number>();
  const pins = extras.pins ?? new Map<string, PinEntry>();
  const pinCutoff = policy.now - (extras.pinMemory ?? DEFAULT_PIN_MEMORY);
  // Each image's refs and recorded use, worked out once for --keep-latest and the decision.
  const candidates = [...byDigest].map(([digest, group]) => {
    const refs = group.map((i) => i.ref).sort();
    const used = lastUseOf(usage, snap.ns, refs);
    const pulled = lastPullOf(pulls, snap.ns, refs);
    const uses = [used ? lastUse(used) : null, pulled].filter((t) => t !== null);
    const lastUsed = uses.length ? Math.max(...uses) : null;
    const ageSeconds = snap.content.get(digest)?.ageSeconds ?? null;
    return { digest, group, refs, used, pulled, lastUse: lastUsed, ageSeconds };
  });
  const newest = newestPerRepository(candidates, extras.keepLatest ?? 0);
  const images: ImagePlan[] = [];
  for (const { digest, group, refs, used, pulled, lastUse: lastUsed } of candidates) {
    const blob = snap.content.get(digest);
    const base = {
      ns: snap.ns,
      digest,
      refs,
      size: group[0]?.size ?? 0,
      ageSeconds: blob?.ageSeconds ?? null,
      ageText: blob?.ageText ?? null,
      lastStart: used?.start ?? null,
      lastStop: used?.stop ?? null,
      // Only when recorded, so plans without pulls look as they always did.
      ...(pulled === null ? {} : { lastPull: pulled }),
    };
    const keep = (reason: Reason, extra: Partial<ImagePlan> = {}): ImagePlan => ({
      ...base,
      decision: "keep",
      reason,
      ...extra,
    });
    const users = usersOf.get(digest);
    const pinned = group.some((i) => pinnedByLabel(i.labels));
    const pattern = patterns.find(({ re }) => refs.some((r) => re.test(r)))?.p;
    const pinSince = users || pinned
      ? null
      : rememberedSince(pins, snap.ns, digest, refs, pinCutoff);
    if (users) {
      const sorted = [...users].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
      images.push(
        keep("in-use", { containers: [...new Set(sorted.map((u) => u.id))], users: sorted }),
      );
      const repos = new Set(refs.map(repositoryOf).filter((r) => r !== null));
      if (repos.size > 1) {
        warnings.push(
          `Dupe refs found for ns ${snap.ns} image ${digest}, keeping all: ${refs.join(" + ")}`,
        );
      }
    } else if (pinned) {
      images.push(keep("pinned"));
    } else if (pinSince !== null) {
      images.push(keep("pinned", { pinnedRememberedSince: pinSince }));
    } else if (pattern !== undefined) {
      images.push(keep("kept-by-pattern", { pattern }));
    } else if (newest.has(digest)) {
      images.push(keep("kept-latest"));
    } else if (lastUsed !== null && lastUsed >= policy.now - policy.usedWithin) {
      // A start, stop or pull within the window.
      images.push(keep("recently-used"));
    } else if (base.ageSeconds === null || base.ageSeconds < policy.minAge) {
      images.push(keep("too-young"));
    } else {
      images.push({ ...base, decision: "prune", reason: "prune" });
    }
  }
  images.sort((a, b) => a.refs[0]! < b.refs[0]! ? -1 : a.refs[0]! > b.refs[0]! ? 1 : 0);
  return { images, warnings };
}

/** The key of one image decision across passes. */
export function imageKey(p: Pick<ImagePlan, "ns" | "digest">): string {
  return `${p.ns} ${p.digest}`;
}

/**
 * Merges the plan of a later pass with what earlier passes allowed: an image is pruned only if
 * every pass would have pruned it with the same refs; otherwise it is kept as
 * used-during-double-check.
 */
export function confirmAcrossPasses(
  latest: ImagePlan[],
  prunableBefore: Map<string, string>,
): ImagePlan[] {
  return latest.map((p) => {
    if (p.decision !== "prune") return p;
    if (prunableBefore.get(imageKey(p)) === p.refs.join(" ")) return p;
    return { ...p, decision: "keep", reason: "used-during-double-check" };
  });
}

/** The prunable images of a plan, as key → refs, for {@linkcode confirmAcrossPasses}. */
export function prunableSet(images: ImagePlan[]): Map<string, string> {
  return new Map(
    images.filter((p) => p.decision === "prune").map((p) => [imageKey(p), p.refs.join(" ")]),
  );
}
