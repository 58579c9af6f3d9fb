/**
 * What prune reads and keeps beside the usage DB: the recorder's pulls (`image_pulls`) and
 * ctre's pin memory (`pinned`), as the planner's extra inputs. Needs read (and, to remember
 * pins, write) access to the state dir.
 *
 * @module
 */
import { join } from "node:path";
import { quoteCut } from "../core/text.ts";
import type { NamespaceSnapshot } from "../core/containerd.ts";
import { setAsideRejected } from "../state/line_file.ts";
import {
  expirePins,
  loadPinMemory,
  observePins,
  PINS_FILE,
  writePinMemory,
} from "../state/pin_memory.ts";
import { DEFAULT_PIN_MEMORY, pinnedByLabel, type PlanExtras } from "../policy/plan.ts";
import { loadPullDb, PULLS_FILE } from "../state/pull_db.ts";

/** The planner's extras from the state dir, and a warning per corrupt line (ignored). */
export async function loadExtras(
  stateDir: string,
  opts: { pinMemory?: number; keepLatest?: number },
): Promise<{ extras: PlanExtras; warnings: string[] }> {
  const pullsPath = join(stateDir, PULLS_FILE);
  const pinsPath = join(stateDir, PINS_FILE);
  const [pulls, pins] = await Promise.all([loadPullDb(pullsPath), loadPinMemory(pinsPath)]);
  const warnings = [
    ...pulls.rejected.map((r) =>
      `Ignoring line ${r.lineNo} of ${pullsPath}: ${r.reason}: ${quoteCut(r.line)}`
    ),
    ...pins.rejected.map((r) =>
      `Ignoring line ${r.lineNo} of ${pinsPath}: ${r.reason}: ${quoteCut(r.line)}`
    ),
  ];
  return {
    extras: {
      pulls: pulls.entries,
      pins: pins.entries,
      pinMemory: opts.pinMemory ?? DEFAULT_PIN_MEMORY,
      keepLatest: opts.keepLatest ?? 0,
    },
    warnings,
  };
}

/** The images of `snaps` pinned by label now, each with every ref of its digest. */
function pinnedImages(
  snaps: NamespaceSnapshot[],
): { ns: string; digest: string; refs: string[] }[] {
  const out: { ns: string; digest: string; refs: string[] }[] = [];
  for (const snap of snaps) {
    const byDigest = new Map<string, typeof snap.images>();
    for (const i of snap.images) {
      const group = byDigest.get(i.digest);
      if (group === undefined) byDigest.set(i.digest, [i]);
      else group.push(i);
    }
    for (const [digest, group] of byDigest) {
      if (group.some((i) => pinnedByLabel(i.labels))) {
        out.push({ ns: snap.ns, digest, refs: group.map((i) => i.ref).sort() });
      }
    }
  }
  return out;
}

/**
 * Adds the images pinned in `snaps` to `<state-dir>/pinned`, forgets entries not seen for
 * `pinMemory`, and writes the file (atomically) when that changed anything. Corrupt lines are
 * appended to `pinned.rejected` first, so none is lost. Call under the prune lock.
 */
export async function rememberPins(
  stateDir: string,
  snaps: NamespaceSnapshot[],
  now: number,
  pinMemory: number = DEFAULT_PIN_MEMORY,
): Promise<void> {
  const path = join(stateDir, PINS_FILE);
  const memory = await loadPinMemory(path);
  await setAsideRejected(path, memory.rejected, now);
  const added = observePins(memory.entries, pinnedImages(snaps), now);
  const dropped = expirePins(memory.entries, now - pinMemory);
  if (added || dropped > 0 || memory.rejected.length > 0) {
    await writePinMemory(path, memory.entries);
  }
}
