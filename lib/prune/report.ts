/**
 * How a prune run is shown: the aligned table of --verbose and the JSON document of --json.
 * Field names of the JSON document are stable and documented in docs/formats.md.
 *
 * @module
 */
import type { Budget } from "../policy/budget.ts";
import type { ImagePlan } from "../policy/plan.ts";
import type { DiskOutcome } from "./disk_outcome.ts";
import { alignColumns, isoTime } from "../core/text.ts";
import { formatBytes } from "../core/units.ts";

/** What one prune run did, beyond its plan. */
export interface PruneOutcome {
  removed: { namespace: string; ref: string }[];
  missing: { namespace: string; ref: string }[];
  failed: { namespace: string; ref: string; error: string }[];
  /** Refs kept at the last second: they point to `digest` now, not to the planned image. */
  /** `digest`: the new target, null when an image event said it moved but not where. */
  repointed: { namespace: string; ref: string; digest: string | null }[];
  removedImages: number;
  /** What the content store shrank by: measured before removal and after clean-up. */
  reclaimedBytes: number;
  /** The sizes (`ctr image ls`) of the images removed; not what was freed. */
  removedImageBytes: number;
  contentBytesBefore: number;
  contentBytesAfter: number | null;
  containers: { deleted: string[]; kept: string[]; errors: string[] } | null;
  /** What the run freed on disk, predicted and measured (a forced run that removed images). */
  disk?: DiskOutcome | null;
  content:
    | {
      namespace: string;
      blobsBefore: number;
      blobsAfter: number;
      /** Images whose layer references content prune left alone (refs joined by " "). */
      protected: string[];
      error: string | null;
      /** Why content prune left this namespace alone (lib/policy/content_scope.ts). */
      skipped?: string;
    }[]
    | null;
}

function detail(p: ImagePlan): string {
  if (p.reason === "in-use") {
    const users = p.users?.map((u) => `${u.id}(${u.how})`) ?? p.containers ?? [];
    return `in-use by ${users.join(",")}`;
  }
  if (p.reason === "kept-by-pattern") return `kept-by-pattern ${p.pattern}`;
  if (p.reason === "recently-used") {
    return `recently-used ${isoTime(Math.max(p.lastStart ?? 0, p.lastStop ?? 0, p.lastPull ?? 0))}`;
  }
  if (p.reason === "pinned" && p.pinnedRememberedSince !== undefined) {
    return `pinned (remembered since ${isoTime(p.pinnedRememberedSince)})`;
  }
  return p.reason;
}

/**
 * The --verbose table: one row per image (its refs joined by ","). UNIQUE SIZE is what removing
 * the image alone frees on disk; CONTENT and SNAPSHOTS what it holds, shared bytes included.
 */
export function planTable(images: ImagePlan[]): string[] {
  const rows = [
    [
      "NAMESPACE",
      "REFS",
      "DIGEST",
      "UNIQUE SIZE",
      "CONTENT",
      "SNAPSHOTS",
      "AGE",
      "LAST START",
      "LAST STOP",
      "DECISION",
      "REASON",
    ],
    ...images.map((p) => [
      p.ns,
      p.refs.join(","),
      p.digest.slice(0, 19),
      p.disk ? formatBytes(p.disk.uniqueBytes) : "-",
      p.disk ? formatBytes(p.disk.contentBytes) : "-",
      p.disk ? formatBytes(p.disk.snapshotBytes) : "-",
      p.ageText ?? "-",
      isoTime(p.lastStart),
      isoTime(p.lastStop),
      p.decision,
      detail(p),
    ]),
  ];
  return alignColumns(rows);
}

export interface PlanDocumentInput {
  mode: string;
  generatedAt: number;
  policy: {
    minAgeSeconds: number;
    usedWithinSeconds: number;
    doubleCheckSeconds: number;
    keep: readonly string[];
    namespaces: readonly string[];
    budget: Budget | null;
    /** --keep-latest (0: off). */
    keepLatest?: number;
    /** --pin-memory in seconds. */
    pinMemorySeconds?: number;
  };
  images: ImagePlan[];
  outcome: PruneOutcome | null;
}

/**
 * The version of the prune --json document's shape (schemas/prune.schema.json; docs/json.md
 * says when it changes). `version` is its older name, kept with the same value.
 */
export const PRUNE_SCHEMA_VERSION = 1;

/** The --json document (schemas/prune.schema.json). */
export function planDocument(input: PlanDocumentInput): unknown {
  const images = input.images.map((p) => ({
    namespace: p.ns,
    refs: p.refs,
    digest: p.digest,
    sizeBytes: p.size,
    contentBytes: p.disk?.contentBytes ?? null,
    snapshotBytes: p.disk?.snapshotBytes ?? null,
    uniqueBytes: p.disk?.uniqueBytes ?? null,
    ageSeconds: p.ageSeconds,
    ageText: p.ageText,
    lastStart: p.lastStart,
    lastStop: p.lastStop,
    lastPull: p.lastPull ?? null,
    decision: p.decision,
    reason: p.reason,
    containers: p.containers ?? null,
    users: p.users?.map((u) => ({ id: u.id, how: u.how, why: u.why ?? null })) ?? null,
    pattern: p.pattern ?? null,
    pinnedRememberedSince: p.pinnedRememberedSince ?? null,
    lruRank: p.lruRank ?? null,
    budgetNeeded: p.budgetNeeded ?? null,
  }));
  const o = input.outcome;
  return {
    schemaVersion: PRUNE_SCHEMA_VERSION,
    version: PRUNE_SCHEMA_VERSION,
    mode: input.mode,
    generatedAt: new Date(input.generatedAt * 1000).toISOString(),
    policy: input.policy,
    images,
    disk: o?.disk ?? null,
    removal: o === null ? null : {
      removed: o.removed,
      missing: o.missing,
      failed: o.failed,
      repointed: o.repointed,
      containers: o.containers,
      content: o.content,
    },
    totals: {
      images: images.length,
      prune: images.filter((i) => i.decision === "prune").length,
      keep: images.filter((i) => i.decision === "keep").length,
      removedImages: o?.removedImages ?? 0,
      failedRefs: o?.failed.length ?? 0,
      reclaimedBytes: o?.reclaimedBytes ?? 0,
      removedImageBytes: o?.removedImageBytes ?? 0,
      contentBytesBefore: o?.contentBytesBefore ?? null,
      contentBytesAfter: o?.contentBytesAfter ?? null,
    },
  };
}
