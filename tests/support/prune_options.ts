/**
 * The options of a forced prune as the CLI builds them by default (14 days, no double check,
 * container clean-up and content prune on), for unit tests to start from.
 *
 * @module
 */
import type { PruneOptions } from "../../lib/prune/prune.ts";

const DAY = 86400;

/** Default forced-prune options on `stateDir`, with `over` applied. */
export function pruneOptions(stateDir: string, over: Partial<PruneOptions> = {}): PruneOptions {
  return {
    mode: "force",
    minAge: 14 * DAY,
    usedWithin: 14 * DAY,
    doubleCheck: 0,
    stateDir,
    namespaces: [],
    keep: [],
    containerCleanup: true,
    contentPrune: true,
    json: false,
    verbose: false,
    metrics: false,
    budget: null,
    ...over,
  };
}
