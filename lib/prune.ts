/**
 * `ctre prune`: plan, double-check, show, ask, remove, then clean up containers and content.
 * Decisions come from plan.ts; every ctr call goes through the injected Ctr; all output goes
 * to the injected Io.
 *
 * @module
 */
import { join } from "node:path";
import { cleanupContainers, pruneContent } from "./cleanup.ts";
import type { Ctr } from "./ctr.ts";
import { errorText } from "./errors.ts";
import { listNamespaces, snapshotAll } from "./inventory.ts";
import { type Io, println } from "./io.ts";
import { acquireLock } from "./lock.ts";
import { confirmAcrossPasses, type ImagePlan, planNamespace, prunableSet } from "./plan.ts";
import { removeImages } from "./removal.ts";
import { formatBytes } from "./units.ts";
import { loadUsageDb } from "./usage_db.ts";

export interface PruneOptions {
  mode: "ask" | "force" | "dry-run";
  /** Seconds. */
  minAge: number;
  /** Seconds. */
  usedWithin: number;
  /** Seconds; 0 disables. */
  doubleCheck: number;
  stateDir: string;
  /** Only these namespaces; empty for all. */
  namespaces: string[];
  keep: string[];
  containerCleanup: boolean;
  contentPrune: boolean;
}

export const DOUBLE_CHECK_INTERVAL_MS = 1500;

/** Runs one planning pass over all namespaces, warning once per distinct message. */
async function planPass(
  ctr: Ctr,
  opts: PruneOptions,
  io: Io,
  namespaces: string[],
  warned: Set<string>,
): Promise<ImagePlan[]> {
  const dbPath = join(opts.stateDir, "image_starts");
  const db = await loadUsageDb(dbPath);
  const warn = (text: string) => {
    if (!warned.has(text)) println(io.stderr, `Warning: ${text}`);
    warned.add(text);
  };
  for (const r of db.rejected) {
    warn(`Ignoring line ${r.lineNo} of ${dbPath}: ${r.reason}: "${r.line}"`);
  }
  const policy = {
    now: io.now(),
    minAge: opts.minAge,
    usedWithin: opts.usedWithin,
    keep: opts.keep,
  };
  const images: ImagePlan[] = [];
  for (const snap of await snapshotAll(ctr, namespaces)) {
    const plan = planNamespace(snap, db.entries, policy);
    plan.warnings.forEach(warn);
    images.push(...plan.images);
  }
  return images;
}

/** Re-plans every 1.5 s for `seconds`; an image stays prunable only if every pass agrees. */
async function doubleCheck(
  first: ImagePlan[],
  seconds: number,
  io: Io,
  pass: () => Promise<ImagePlan[]>,
): Promise<ImagePlan[]> {
  let plan = first;
  const deadline = io.now() + seconds;
  while (io.now() < deadline && plan.some((p) => p.decision === "prune")) {
    if (io.stderrIsTerminal) {
      const left = Math.max(0, Math.round(deadline - io.now()));
      io.stderr.write(`\x1b[1K\r(double check to avoid cleaning mid-restart... ${left} secs)`);
    }
    await io.sleep(DOUBLE_CHECK_INTERVAL_MS);
    plan = confirmAcrossPasses(await pass(), prunableSet(plan));
  }
  if (io.stderrIsTerminal) io.stderr.write("\x1b[1K\r");
  return plan;
}

function prunable(plan: ImagePlan[]): ImagePlan[] {
  return plan.filter((p) => p.decision === "prune");
}

/** Whether an answer to the prompt means yes. Only a clear y or yes does. */
export function isYes(answer: string | null): boolean {
  return answer !== null && /^(y|yes)$/i.test(answer.trim());
}

/** Runs `ctre prune`. Returns the exit code: 0 done, 1 aborted or something failed. */
export async function prune(ctr: Ctr, opts: PruneOptions, io: Io): Promise<number> {
  const lock = opts.mode === "dry-run" ? null : await acquireLock(opts.stateDir, "prune");
  try {
    return await pruneLocked(ctr, opts, io);
  } finally {
    lock?.release();
  }
}

async function pruneLocked(ctr: Ctr, opts: PruneOptions, io: Io): Promise<number> {
  const namespaces = await listNamespaces(ctr, opts.namespaces);
  const warned = new Set<string>();
  const pass = () => planPass(ctr, opts, io, namespaces, warned);
  let plan = await doubleCheck(await pass(), opts.doubleCheck, io, pass);
  const shown = prunable(plan);
  if (shown.length === 0) {
    println(
      io.stdout,
      `Nothing to prune (${plan.length} images in ${namespaces.length} namespaces kept)`,
    );
    return 0;
  }
  println(io.stdout, "NS REF_TO_PRUNE");
  for (const p of shown) for (const ref of p.refs) println(io.stdout, `${p.ns} ${ref}`);
  if (opts.mode === "dry-run") return 0;
  if (opts.mode === "ask") {
    io.stdout.write("Prune (y/n)? ");
    const answer = await io.readLine();
    if (answer === null) println(io.stdout);
    if (!isYes(answer)) {
      println(io.stderr, "Aborted, nothing removed");
      return 1;
    }
    // The answer may have taken a while: check once more right before removing.
    plan = confirmAcrossPasses(await pass(), prunableSet(plan));
    for (const p of shown) {
      if (!prunable(plan).some((q) => q.ns === p.ns && q.digest === p.digest)) {
        println(io.stdout, `(keeping) ${p.ns} ${p.refs.join(" ")}: used since the list was made`);
      }
    }
  }
  return await removeAndClean(ctr, opts, io, prunable(plan), namespaces);
}

async function removeAndClean(
  ctr: Ctr,
  opts: PruneOptions,
  io: Io,
  images: ImagePlan[],
  namespaces: string[],
): Promise<number> {
  let failed = 0;
  let removedImages = 0;
  let reclaimed = 0;
  for (const ns of new Set(images.map((p) => p.ns))) {
    const mine = images.filter((p) => p.ns === ns);
    const outcome = await removeImages(ctr, ns, mine.flatMap((p) => p.refs));
    for (const ref of outcome.removed) println(io.stdout, `(deleted) ${ns} ${ref}`);
    for (const ref of outcome.missing) println(io.stdout, `(already gone) ${ns} ${ref}`);
    for (const f of outcome.failed) {
      println(io.stderr, `Cannot remove image "${f.ref}" in namespace ${ns}: ${f.reason}`);
    }
    failed += outcome.failed.length;
    const gone = new Set([...outcome.removed, ...outcome.missing]);
    for (const p of mine) {
      if (p.refs.every((r) => gone.has(r))) {
        removedImages++;
        reclaimed += p.size;
      }
    }
  }
  println(
    io.stdout,
    `Removed ${removedImages} of ${images.length} images (${formatBytes(reclaimed)})` +
      (failed ? `, ${failed} refs failed` : ""),
  );
  if (removedImages === 0) return failed ? 1 : 0;
  if (opts.containerCleanup) failed += await cleanContainers(ctr, io, namespaces);
  if (opts.contentPrune) failed += await cleanContent(ctr, io, namespaces);
  return failed ? 1 : 0;
}

async function cleanContainers(ctr: Ctr, io: Io, namespaces: string[]): Promise<number> {
  let errors = 0;
  for (const ns of namespaces) {
    try {
      const r = await cleanupContainers(ctr, ns, io.now());
      for (const s of r.skipped) println(io.stdout, `(skipping container) ${s}`);
      for (const c of r.deleted) {
        println(
          io.stdout,
          `(deleted container) ${ns} ${c.podNamespace} ${c.pod} ${c.container} ${c.created}`,
        );
      }
      for (const c of r.kept) {
        const who = c.pod ? `${c.podNamespace} ${c.pod} ${c.container} ${c.created}` : c.id;
        println(io.stdout, `(keeping container) ${ns} ${who} (${c.why ?? "kept"})`);
      }
      for (const e of r.errors) println(io.stderr, e);
      errors += r.errors.length;
    } catch (e) {
      println(io.stderr, `Container clean-up of namespace ${ns} failed: ${errorText(e)}`);
      errors++;
    }
  }
  return errors;
}

async function cleanContent(ctr: Ctr, io: Io, namespaces: string[]): Promise<number> {
  let errors = 0;
  for (const ns of namespaces) {
    try {
      const r = await pruneContent(ctr, ns);
      if (r.error !== undefined) {
        println(io.stderr, `Content prune of namespace ${ns} failed: ${r.error}`);
        errors++;
      }
      println(io.stdout, `(pruned content) ${ns} ${r.before - r.after}`);
    } catch (e) {
      println(io.stderr, `Content prune of namespace ${ns} failed: ${errorText(e)}`);
      errors++;
    }
  }
  return errors;
}
