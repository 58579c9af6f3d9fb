/**
 * The decision, as a pure function: given what containerd holds, the usage DB and the policy,
 * which images may go and why each other one stays. Decisions are per (namespace, digest): all
 * refs of a digest go together or stay together.
 *
 * @module
 */
import type { ImageRow, NamespaceSnapshot } from "../core/containerd.ts";
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

/**
 * Decides every image of one namespace: who uses what (lib/policy/lineage.ts), each digest's
 * refs and recorded use, the N newest per repository, then one decision per digest.
 */
export function planNamespace(
  snap: NamespaceSnapshot,
  usage: Map<string, Usage>,
  policy: Policy,
  extras: PlanExtras = {},
): Plan {
  const resolved = resolveUsers(snap);
  const candidates = candidatesOf(snap, usage, extras.pulls ?? new Map());
  const rules: Rules = {
    ns: snap.ns,
    policy,
    usersOf: resolved.usersOf,
    patterns: policy.keep.map((p) => ({ p, re: globToRegExp(p) })),
    newest: newestPerRepository(candidates, extras.keepLatest ?? 0),
    pins: extras.pins ?? new Map(),
    pinCutoff: policy.now - (extras.pinMemory ?? DEFAULT_PIN_MEMORY),
  };
  const images = candidates.map((c) => decideImage(c, rules, snap.content.get(c.digest)));
  const warnings = [
    ...resolved.warnings,
    ...images.flatMap((p) => p.reason === "in-use" ? dupeRefWarnings(p) : []),
  ];
  images.sort((a, b) => a.refs[0]! < b.refs[0]! ? -1 : a.refs[0]! > b.refs[0]! ? 1 : 0);
  return { images, warnings };
}

/** One digest of a namespace: its rows, sorted refs and recorded use, worked out once. */
export interface Candidate {
  digest: string;
  group: ImageRow[];
  refs: string[];
  /** The latest recorded start/stop of any of its refs. */
  used: Usage | undefined;
  /** The latest recorded pull of any of its refs, unix seconds. */
  pulled: number | null;
  /** The latest of both, unix seconds. */
  lastUse: number | null;
  ageSeconds: number | null;
}

/** The images of `snap` by digest (in listing order), each with its refs and recorded use. */
export function candidatesOf(
  snap: Pick<NamespaceSnapshot, "ns" | "images" | "content">,
  usage: Map<string, Usage>,
  pulls: Map<string, number>,
): Candidate[] {
  const byDigest = new Map<string, ImageRow[]>();
  for (const image of snap.images) {
    const group = byDigest.get(image.digest) ?? [];
    group.push(image);
    byDigest.set(image.digest, group);
  }
  return [...byDigest].map(([digest, group]) => {
    const refs = group.map((i) => i.ref).sort();
    const used = lastUseOf(usage, snap.ns, refs);
    const pulled = lastPullOf(pulls, snap.ns, refs);
    const uses = [used ? lastUse(used) : null, pulled].filter((t) => t !== null);
    const ageSeconds = snap.content.get(digest)?.ageSeconds ?? null;
    return {
      digest,
      group,
      refs,
      used,
      pulled,
      lastUse: uses.length ? Math.max(...uses) : null,
      ageSeconds,
    };
  });
}

/** What {@linkcode decideImage} weighs besides the image itself. */
export interface Rules {
  ns: string;
  policy: Policy;
  /** Image target digest → its users (lib/policy/lineage.ts). */
  usersOf: Map<string, User[]>;
  patterns: { p: string; re: RegExp }[];
  /** Digests kept by `--keep-latest`. */
  newest: Set<string>;
  pins: Map<string, PinEntry>;
  /** Pins remembered as last seen before this (unix seconds) no longer protect. */
  pinCutoff: number;
}

/**
 * One digest's decision, the first rule that keeps it winning: in use, pinned (label, then pin
 * memory), kept by pattern, kept latest, recently used, too young; else prune.
 */
export function decideImage(
  c: Candidate,
  rules: Rules,
  blob: { ageSeconds: number; ageText: string } | undefined,
): ImagePlan {
  const base = {
    ns: rules.ns,
    digest: c.digest,
    refs: c.refs,
    size: c.group[0]?.size ?? 0,
    ageSeconds: blob?.ageSeconds ?? null,
    ageText: blob?.ageText ?? null,
    lastStart: c.used?.start ?? null,
    lastStop: c.used?.stop ?? null,
    // Only when recorded, so plans without pulls look as they always did.
    ...(c.pulled === null ? {} : { lastPull: c.pulled }),
  };
  const keep = (reason: Reason, extra: Partial<ImagePlan> = {}): ImagePlan => ({
    ...base,
    decision: "keep",
    reason,
    ...extra,
  });
  const users = rules.usersOf.get(c.digest);
  if (users) {
    const sorted = [...users].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    return keep("in-use", { containers: [...new Set(sorted.map((u) => u.id))], users: sorted });
  }
  if (c.group.some((i) => pinnedByLabel(i.labels))) return keep("pinned");
  const since = rememberedSince(rules.pins, rules.ns, c.digest, c.refs, rules.pinCutoff);
  if (since !== null) return keep("pinned", { pinnedRememberedSince: since });
  const pattern = rules.patterns.find(({ re }) => c.refs.some((r) => re.test(r)))?.p;
  if (pattern !== undefined) return keep("kept-by-pattern", { pattern });
  if (rules.newest.has(c.digest)) return keep("kept-latest");
  const { now, usedWithin, minAge } = rules.policy;
  // A start, stop or pull within the window.
  if (c.lastUse !== null && c.lastUse >= now - usedWithin) return keep("recently-used");
  if (base.ageSeconds === null || base.ageSeconds < minAge) return keep("too-young");
  return { ...base, decision: "prune", reason: "prune" };
}

/** The warning for an in-use digest whose refs name more than one repository (all are kept). */
export function dupeRefWarnings(p: Pick<ImagePlan, "ns" | "digest" | "refs">): string[] {
  const repos = new Set(p.refs.map(repositoryOf).filter((r) => r !== null));
  if (repos.size <= 1) return [];
  return [`Dupe refs found for ns ${p.ns} image ${p.digest}, keeping all: ${p.refs.join(" + ")}`];
}

/** The key of one image decision across passes. */
export function imageKey(p: Pick<ImagePlan, "ns" | "digest">): string {
  return `${p.ns} ${p.digest}`;
}

/** The prunable images of a plan, as key → refs (lib/policy/recheck.ts confirms passes by it). */
export function prunableSet(images: ImagePlan[]): Map<string, string> {
  return new Map(
    images.filter((p) => p.decision === "prune").map((p) => [imageKey(p), p.refs.join(" ")]),
  );
}
