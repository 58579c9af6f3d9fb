/**
 * The clean-up steps of `ctre prune` after images were removed: stopped containers, content
 * references (keeping every remaining image whole, see layer_guard.ts), and the measurement of
 * what the run freed. Each failure is reported and the rest goes on.
 *
 * @module
 */
import { cleanupContainers, type CleanupOptions, type ContainerLine } from "./containers.ts";
import type { Containerd } from "../ctr/gateway.ts";
import { contentPrunePlan } from "../policy/content_scope.ts";
import { errorText } from "../core/errors.ts";
import { measureContent } from "../node/inventory.ts";
import { pruneContentSafely } from "./content_prune.ts";
import type { PruneOutcome } from "./report.ts";
import { formatBytes } from "../core/units.ts";

/** Where the steps print: a human-readable line, an error line, an updating progress line. */
export interface Lines {
  say(text: string): void;
  error(text: string): void;
  /** `label done/total` on a terminal, in place; nothing elsewhere. */
  progress?(label: string, done: number, total: number): void;
}

/** Container clean-up of every namespace of `namespaces`. */
export async function cleanContainers(
  containerd: Containerd,
  namespaces: string[],
  now: number,
  out: Lines,
  opts: CleanupOptions = {},
): Promise<NonNullable<PruneOutcome["containers"]>> {
  const result = { deleted: [] as string[], kept: [] as string[], errors: [] as string[] };
  for (const [i, ns] of namespaces.entries()) {
    out.progress?.(`cleaning up containers in ${ns}, namespace`, i + 1, namespaces.length);
    try {
      const r = await cleanupContainers(containerd, ns, now, opts);
      for (const s of r.skipped) out.say(`(skipping container) ${s}`);
      // Inspected containers show their pod labels and creation time, as the original did.
      const who = (c: ContainerLine) =>
        c.created ? `${c.podNamespace} ${c.pod} ${c.container} ${c.created}` : c.id;
      for (const c of r.deleted) {
        out.say(`(deleted container) ${ns} ${who(c)}`);
        result.deleted.push(`${ns} ${c.id}`);
      }
      for (const c of r.kept) {
        out.say(`(keeping container) ${ns} ${who(c)} (${c.why ?? "kept"})`);
        result.kept.push(`${ns} ${c.id}`);
      }
      for (const e of r.errors) out.error(e);
      result.errors.push(...r.errors);
    } catch (e) {
      const text = `Container clean-up of namespace ${ns} failed: ${errorText(e)}`;
      out.error(text);
      result.errors.push(text);
    }
  }
  return result;
}

/**
 * Content prune of every namespace of `namespaces` that content_policy.ts allows, keeping every
 * remaining image whole.
 */
export async function cleanContent(
  containerd: Containerd,
  namespaces: string[],
  opts: { contentPruneMoby: boolean },
  out: Lines,
): Promise<NonNullable<PruneOutcome["content"]>> {
  const result: NonNullable<PruneOutcome["content"]> = [];
  const plan = contentPrunePlan(namespaces, opts);
  for (const s of plan.skipped) {
    out.say(`(content prune) ${s.namespace} ${s.why}`);
    result.push({
      namespace: s.namespace,
      blobsBefore: 0,
      blobsAfter: 0,
      protected: [],
      error: null,
      skipped: s.why,
    });
  }
  for (const [i, ns] of plan.prune.entries()) {
    out.progress?.(`pruning content in ${ns}, namespace`, i + 1, plan.prune.length);
    try {
      const r = await pruneContentSafely(containerd, ns);
      for (const refs of r.protected) {
        out.say(
          `(protected content) ${ns} ${refs}: its layers have no other copy (not unpacked)`,
        );
      }
      if (r.error !== undefined) {
        out.error(`Content prune of namespace ${ns} failed: ${r.error}`);
      }
      out.say(`(pruned content) ${ns} ${r.before - r.after}`);
      result.push({
        namespace: ns,
        blobsBefore: r.before,
        blobsAfter: r.after,
        protected: r.protected,
        error: r.error ?? null,
      });
    } catch (e) {
      const text = errorText(e);
      out.error(`Content prune of namespace ${ns} failed: ${text}`);
      result.push({ namespace: ns, blobsBefore: 0, blobsAfter: 0, protected: [], error: text });
    }
  }
  return result;
}

/** Measures the content store after the clean-up and prints what the run freed. */
export async function measureAfter(
  containerd: Containerd,
  namespaces: string[],
  outcome: PruneOutcome,
  out: Lines,
): Promise<void> {
  try {
    outcome.contentBytesAfter = await measureContent(containerd, namespaces);
  } catch (e) {
    out.error(`Cannot measure the content store afterwards: ${errorText(e)}`);
  }
  const after = outcome.contentBytesAfter;
  outcome.reclaimedBytes = after === null ? 0 : Math.max(0, outcome.contentBytesBefore - after);
  out.say(
    `Total reclaimed space: ${after === null ? "unknown" : formatBytes(outcome.reclaimedBytes)}` +
      ` (content store ${formatBytes(outcome.contentBytesBefore)} before, ` +
      `${after === null ? "unknown" : formatBytes(after)} after; the removed images' sizes ` +
      `add up to ${formatBytes(outcome.removedImageBytes)})`,
  );
}
