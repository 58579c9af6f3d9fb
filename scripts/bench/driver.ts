// deno-lint-ignore-file no-console
/**
 * Runs one step of ctre in its own process, for the benchmark, exactly as prune runs it:
 *
 * - `remove`: lib/prune/removal.ts removeImages per namespace, the namespaces at once (prune's
 *   removeBatch), each chunk's refs re-read with `ctr image ls name==…` right before its
 *   `ctr image rm`, as prune does.
 * - `cleanup`: lib/prune/containers.ts cleanupContainers per namespace, one after the other (prune's
 *   container clean-up).
 * - `content`: lib/prune/content_prune.ts pruneContentSafely per namespace, one after the other (prune's
 *   content prune).
 *
 * A `remove` job with `"check": false` skips the last-second re-read, to measure what it costs.
 *
 * Reads its job as JSON on stdin; prints on stdout the wall time of the step (ms, in process),
 * the ctr processes it started (`Ctr.spawned`), its own CPU during the step and in all, its
 * peak RSS (getrusage of this process only, no ctr), and the outcome. Needs only --allow-run=ctr.
 *
 *   echo '{"address": "...", "sets": [{"ns": "default", "refs": [{"ref": "...", "digest": "..."}]}]}' |
 *     deno run --allow-run=ctr scripts/bench/driver.ts remove
 *
 * @module
 */
import process from "node:process";
import { cleanupContainers } from "../../lib/prune/containers.ts";
import { systemCtr } from "../../lib/ctr/runner.ts";
import { pruneContentSafely } from "../../lib/prune/content_prune.ts";
import { REMOVE_CHUNK, removeImages } from "../../lib/prune/removal.ts";
import { ctrGateway } from "../../lib/ctr/ctr_gateway.ts";
import type { Containerd } from "../../lib/ctr/gateway.ts";

interface RemoveJob {
  address: string;
  sets: { ns: string; refs: { ref: string; digest: string }[] }[];
  check?: boolean;
}

interface CleanupJob {
  address: string;
  namespaces: string[];
}

const job = JSON.parse(await new Response(Deno.stdin.readable).text());
const mode = Deno.args[0];
const ctr = systemCtr(job.address);
const containerd = ctrGateway(ctr);
/** The removal without prune's re-read: the gateway's removal, REMOVE_CHUNK refs per ctr. */
async function bareRemoval(containerd: Containerd, ns: string, refs: string[]) {
  const out = {
    removed: [] as string[],
    missing: [] as string[],
    failed: [] as { ref: string; reason: string }[],
  };
  for (let i = 0; i < refs.length; i += REMOVE_CHUNK) {
    const r = await containerd.removeImages(ns, refs.slice(i, i + REMOVE_CHUNK), false);
    out.removed.push(...r.removed);
    out.missing.push(...r.missing);
    out.failed.push(...r.failed);
  }
  return out;
}

const cpu = () => {
  const u = process.resourceUsage();
  return (u.userCPUTime + u.systemCPUTime) / 1000;
};
const cpuBefore = cpu();
const started = performance.now();
let outcome: unknown;
if (mode === "remove") {
  const removed: string[] = [];
  const failed: string[] = [];
  const sets = (job as RemoveJob).sets;
  const check = (job as RemoveJob).check ?? true;
  const results = await Promise.all(
    sets.map(({ ns, refs }) =>
      check
        ? removeImages(containerd, ns, refs)
        : bareRemoval(containerd, ns, refs.map((r) => r.ref))
    ),
  );
  for (const [i, { ns }] of sets.entries()) {
    const r = results[i]!;
    removed.push(...r.removed.map((ref) => `${ns} ${ref}`));
    failed.push(...r.failed.map((f) => `${ns} ${f.ref}: ${f.reason}`));
    failed.push(...r.missing.map((ref) => `${ns} ${ref}: missing`));
  }
  outcome = { removed, failed };
} else if (mode === "cleanup") {
  const deleted: string[] = [];
  const kept: string[] = [];
  const problems: string[] = [];
  for (const ns of (job as CleanupJob).namespaces) {
    const r = await cleanupContainers(containerd, ns, Date.now() / 1000);
    deleted.push(...r.deleted.map((c) => `${ns} ${c.id}`));
    kept.push(...r.kept.map((c) => `${ns} ${c.id}`));
    problems.push(...r.skipped, ...r.errors);
  }
  outcome = { deleted, kept, problems };
} else if (mode === "content") {
  const protectedRefs: string[] = [];
  const errors: string[] = [];
  let blobsFreed = 0;
  for (const ns of (job as CleanupJob).namespaces) {
    const r = await pruneContentSafely(containerd, ns);
    protectedRefs.push(...r.protected.map((refs) => `${ns} ${refs}`));
    if (r.error !== undefined) errors.push(`${ns}: ${r.error}`);
    blobsFreed += r.before - r.after;
  }
  outcome = { protected: protectedRefs, errors, blobsFreed };
} else {
  console.error("usage: driver.ts remove|cleanup|content < job.json");
  Deno.exit(2);
}
const wallMs = performance.now() - started;
console.log(JSON.stringify({
  wallMs,
  spawned: ctr.spawned,
  cpuMs: cpu() - cpuBefore,
  processCpuMs: cpu(),
  maxRssKb: process.resourceUsage().maxRSS,
  outcome,
}));
