/**
 * The recorder's two files in memory: the usage DB (last start and stop per namespace and ref)
 * and the pull DB, with what changed since they were last written, and their writing (atomic,
 * after dropping entries older than the keep window).
 *
 * @module
 */
import { join } from "node:path";
import { errorText } from "../core/errors.ts";
import { expirePulls, PULLS_FILE, recordPull, writePullDb } from "../state/pull_db.ts";
import { writeAtomic } from "../state/state_files.ts";
import { applyEvent, type ImageUse, type UseOutcome } from "../policy/usage_event.ts";
import { expire, formatUsageDb, type Usage, USAGE_FILE } from "../state/usage_db.ts";

/** Where the store writes, how long it keeps entries, and whom it tells. */
export interface StoreContext {
  stateDir: string;
  /** Seconds. */
  keepWindow: number;
  now(): number;
  /** One line per failed write. */
  onError(text: string): void;
  /** Called once per file written. */
  onWrite(): void;
}

/** The usage DB and the pull DB of a recorder, and which of them must be written. */
export class UsageStore {
  #dirty = false;
  #pullsDirty = false;

  constructor(
    readonly ctx: StoreContext,
    /** Usage by usageKey. */
    readonly entries: Map<string, Usage>,
    /** Last pull (image ref created or updated) by usageKey, written to `image_pulls`. */
    readonly pulls: Map<string, number>,
  ) {}

  /** Whether a file must be written. */
  get dirty(): boolean {
    return this.#dirty || this.#pullsDirty;
  }

  /** Makes the next flush rewrite `image_pulls` (e.g. to drop corrupt lines set aside). */
  rewritePulls(): void {
    this.#pullsDirty = true;
  }

  /** Applies one use to the usage DB (lib/policy/usage_event.ts). */
  apply(use: ImageUse): UseOutcome {
    const done = applyEvent(this.entries, use);
    if (done.kind === "recorded") this.#dirty = true;
    return done;
  }

  /** Records a pull of `ref`; false when the ref cannot be stored safely. */
  pull(ns: string, ref: string, time: number): boolean {
    if (!recordPull(this.pulls, ns, ref, time)) return false;
    this.#pullsDirty = true;
    return true;
  }

  /** Writes the DBs that changed (the usage DB also when `force`). */
  async flush(force = false): Promise<void> {
    if (this.#pullsDirty) await this.#flushPulls();
    if (!this.#dirty && !force) return;
    this.#dirty = false;
    expire(this.entries, this.ctx.now() - this.ctx.keepWindow);
    try {
      await writeAtomic(join(this.ctx.stateDir, USAGE_FILE), formatUsageDb(this.entries));
      this.ctx.onWrite();
    } catch (e) {
      this.#dirty = true;
      this.ctx.onError(errorText(e));
    }
  }

  async #flushPulls(): Promise<void> {
    this.#pullsDirty = false;
    expirePulls(this.pulls, this.ctx.now() - this.ctx.keepWindow);
    try {
      await writePullDb(join(this.ctx.stateDir, PULLS_FILE), this.pulls);
      this.ctx.onWrite();
    } catch (e) {
      this.#pullsDirty = true;
      this.ctx.onError(errorText(e));
    }
  }
}
