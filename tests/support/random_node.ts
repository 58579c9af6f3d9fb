/**
 * Random nodes for model-based tests of prune: a seeded generator of what a node holds (as plain
 * data, so the same scenario can be built in the in-memory node or on a real containerd), and
 * the reference model that says, from the scenario alone, which images must stay and which must
 * go. It does not call ctre's policy: it states the rules the README promises.
 *
 * @module
 */
import { prng } from "./random.ts";

export const DAY = 86400;
export const NAMESPACES = ["default", "k8s.io", "moby"] as const;
/** The policy every generated run uses (days): clear of the ages and uses generated. */
export const MIN_AGE_DAYS = 14;
export const USED_WITHIN_DAYS = 14;
/** Ages and use times (days ago) on both sides of the thresholds, never on them. */
const AGES = [1, 5, 13, 15, 21, 30, 90];
const USES = [1, 10, 13, 15, 40];

export interface GenImage {
  ns: string;
  /** Index in Scenario.images. */
  index: number;
  refs: string[];
  layers: number;
  /** Built on this image (its layers below this one's own), or null. */
  base: number | null;
  unpacked: boolean;
  pinned: boolean;
  ageDays: number;
}

export type ContainerKind =
  | "running"
  | "created"
  | "stopped"
  | "no-task"
  | "cri"
  | "docker-snapshot"
  | "no-image";

export interface GenContainer {
  ns: string;
  id: string;
  kind: ContainerKind;
  /** The image it was created from (index), null for no-image. */
  image: number | null;
  /** The ref it names (the image's first ref when created); null for docker-like ones. */
  ref: string | null;
  /** After it was created, its ref was re-pointed to this image (a pull moved the tag). */
  movedTo: number | null;
}

export interface Scenario {
  seed: number;
  images: GenImage[];
  containers: GenContainer[];
  /** Recorded starts: ns, ref, days ago. */
  starts: { ns: string; ref: string; daysAgo: number }[];
  pulls: { ns: string; ref: string; daysAgo: number }[];
  keep: string[];
  keepLatest: number;
}

/** A random scenario for `seed`. */
export function generate(seed: number): Scenario {
  const r = prng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const images: GenImage[] = [];
  const namespaces = NAMESPACES.filter(() => r() < 0.7);
  if (namespaces.length === 0) namespaces.push("default");
  for (const ns of namespaces) {
    const count = 1 + int(6);
    const first = images.length;
    for (let i = 0; i < count; i++) {
      const index = images.length;
      const repo = `docker.io/library/${pick(["app", "web", "db", "tool"])}${int(3)}`;
      const refs = [`${repo}:${index}`];
      if (r() < 0.3) refs.push(`${repo}:alias${index}`);
      const canBase = index > first && r() < 0.3;
      images.push({
        ns,
        index,
        refs,
        layers: 1 + int(3),
        base: canBase ? first + int(index - first) : null,
        unpacked: r() < 0.8,
        pinned: r() < 0.1,
        ageDays: pick(AGES),
      });
    }
  }
  const containers: GenContainer[] = [];
  const kinds: ContainerKind[] = [
    "running",
    "created",
    "stopped",
    "no-task",
    "cri",
    "docker-snapshot",
    "no-image",
  ];
  for (let i = 0, n = int(6); i < n; i++) {
    const kind = pick(kinds);
    const usable = images.filter((im) => im.unpacked);
    const image = kind === "no-image" || usable.length === 0 ? null : pick(usable);
    const ns = image?.ns ?? pick(namespaces);
    const docker = kind === "docker-snapshot" || image === null;
    const others = image ? images.filter((im) => im.ns === ns && im !== image) : [];
    const move = image && !docker && others.length > 0 && r() < 0.2 ? pick(others) : null;
    containers.push({
      ns,
      id: `c${i}`,
      kind: image === null ? "no-image" : kind,
      image: image?.index ?? null,
      ref: docker ? null : image!.refs[0]!,
      movedTo: move?.index ?? null,
    });
  }
  const starts = images.filter(() => r() < 0.3).map((im) => ({
    ns: im.ns,
    ref: pick(im.refs),
    daysAgo: pick(USES),
  }));
  const pulls = images.filter(() => r() < 0.2).map((im) => ({
    ns: im.ns,
    ref: pick(im.refs),
    daysAgo: pick(USES),
  }));
  const keep = r() < 0.3 ? [`docker.io/library/${pick(["app", "web", "db", "tool"])}*`] : [];
  return { seed, images, containers, starts, pulls, keep, keepLatest: r() < 0.2 ? 1 + int(2) : 0 };
}

/** The refs each image has once the scenario is built (moved tags leave their old image). */
export function refsAfterMoves(s: Scenario): Map<number, string[]> {
  const refs = new Map(s.images.map((im) => [im.index, [...im.refs]]));
  for (const c of s.containers) {
    if (c.movedTo === null || c.ref === null) continue;
    for (const [i, list] of refs) refs.set(i, list.filter((x) => x !== c.ref || i === c.movedTo));
    const target = refs.get(c.movedTo)!;
    if (!target.includes(c.ref)) target.push(c.ref);
  }
  return refs;
}

/** What the model requires of one image (by index): it must stay, it must go, or either. */
export type Verdict = { must: "stay"; why: string } | { must: "go" } | { must: "either" };

function globMatch(glob: string, ref: string): boolean {
  const body = glob.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*");
  return new RegExp(`^${body}$`).test(ref);
}

/**
 * The reference model. A container with no image at all (moby's `--rootfs` kind) uses no image,
 * so it keeps none: moby's old unused images must go beside it (lib/policy/lineage.ts).
 */
export function verdicts(s: Scenario): Map<number, Verdict> {
  const refs = refsAfterMoves(s);
  const out = new Map<number, Verdict>();
  const recent = (list: { ns: string; ref: string; daysAgo: number }[], im: GenImage) =>
    list.some((u) =>
      u.ns === im.ns && refs.get(im.index)!.includes(u.ref) && u.daysAgo < USED_WITHIN_DAYS
    );
  // Images below a container's image (its base, and theirs): the container runs from their layers.
  const below = new Set<number>();
  for (const c of s.containers) {
    for (let i = c.image === null ? null : s.images[c.image]!.base; i !== null;) {
      below.add(i);
      i = s.images[i]!.base;
    }
  }
  for (const im of s.images) {
    const mine = refs.get(im.index)!;
    if (mine.length === 0) continue; // not an image any more
    const users = s.containers.filter((c) => c.image === im.index);
    // A container naming a ref that now points here (moved tag) also holds it, by name.
    const named = s.containers.filter((c) => c.ref !== null && mine.includes(c.ref));
    const stay = (why: string): Verdict => ({ must: "stay", why });
    let v: Verdict;
    if (users.length > 0) v = stay(`created from it: ${users.map((c) => c.id).join(" ")}`);
    else if (im.pinned) v = stay("pinned");
    else if (s.keep.some((k) => mine.some((ref) => globMatch(k, ref)))) v = stay("kept by pattern");
    else if (recent(s.starts, im) || recent(s.pulls, im)) v = stay("recently used");
    else if (im.ageDays < MIN_AGE_DAYS) v = stay("young");
    else if (named.length > 0 || below.has(im.index) || s.keepLatest > 0) v = { must: "either" };
    // ctr prints 14-20 days as "2 weeks": only a lower bound of 14 days less a little is known,
    // so ctre may keep such an image as too young (erring on the safe side) or not.
    else if (im.ageDays < MIN_AGE_DAYS + 7) v = { must: "either" };
    else v = { must: "go" };
    out.set(im.index, v);
  }
  return out;
}
