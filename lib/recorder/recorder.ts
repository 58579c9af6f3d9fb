/**
 * `ctre record-image-starts`: follows `ctr event` and records per (namespace, image ref) the
 * last container start and stop in the usage DB. It must not die: malformed lines are logged
 * and skipped, a vanished container is logged and skipped, and when `ctr event` ends
 * (containerd restarted) it reconnects with capped backoff. Only the abort signal of the io
 * (SIGTERM, SIGINT) ends it, after a final write.
 *
 * Three parts: what a use does to the DB is pure (lib/policy/usage_event.ts), which refs a container
 * runs from is the image cache (lib/recorder/container_images.ts, the one that calls ctr), and this file
 * owns the I/O and timing: following, reconnecting, flushing, metrics, log lines.
 *
 * @module
 */
import { join } from "node:path";
import { CtrImageCache, type ImageCache } from "./container_images.ts";
import { type Ctr, type CtrStream } from "../ctr/runner.ts";
import { errorText } from "../core/errors.ts";
import { type CtrEvent, field, parseEventLineFor, payloadTime } from "../ctr/events.ts";
import { type Io, println } from "../core/io.ts";
import { parseTaskLs } from "../ctr/listings.ts";
import { type RejectedLine, setAsideRejected } from "../state/line_file.ts";
import { acquireLock } from "../state/lock.ts";
import { recorderFamilies, type RecorderStats } from "./metric_families.ts";
import { writeMetrics } from "../state/metrics_file.ts";
import { expirePulls, loadPullDb, PULLS_FILE, recordPull, writePullDb } from "../state/pull_db.ts";
import { writeAtomic } from "../state/state_files.ts";
import { applyEvent, type ImageUse, unsafeText } from "../policy/usage_event.ts";
import { expire, formatUsageDb, loadUsageDb, type Usage, USAGE_FILE } from "../state/usage_db.ts";

export type { RecorderStats };

/** The recorder's options, as `ctre record-image-starts` reads them from its flags. */
export interface RecordOptions {
  stateDir: string;
  quiet: boolean;
  /** Seconds. */
  flushInterval: number;
  /** Seconds. */
  keepWindow: number;
  /** Write Prometheus metrics to <state-dir>/metrics/ctre.prom. */
  metrics: boolean;
}

/** The topics {@linkcode Recorder.handle} reads a payload of; the others it only counts. */
const READ_TOPICS = new Set([
  "/containers/create",
  "/containers/update",
  "/containers/delete",
  "/images/create",
  "/images/update",
  "/snapshot/prepare",
  "/snapshot/commit",
  "/snapshot/remove",
  "/tasks/create",
  "/tasks/exit",
]);

export const BACKOFF_START_S = 1;
export const BACKOFF_MAX_S = 30;

/** The recorder's state and event handling, separate from the process loop for tests. */
export class Recorder {
  readonly entries: Map<string, Usage>;
  readonly stats: RecorderStats = {
    events: 0,
    recorded: 0,
    writes: 0,
    reconnects: 0,
    lastEventTime: null,
    connected: false,
  };
  /** Which refs containers and image volumes run from. */
  readonly cache: ImageCache;
  /** Last pull (image ref created or updated) by usageKey, written to `image_pulls`. */
  readonly pulls: Map<string, number>;
  #topics = new Set<string>();
  #dirty = false;
  #pullsDirty = false;

  constructor(
    readonly ctr: Ctr,
    readonly opts: RecordOptions,
    readonly io: Io,
    entries: Map<string, Usage>,
    pulls: Map<string, number> = new Map(),
  ) {
    this.entries = entries;
    this.pulls = pulls;
    this.cache = new CtrImageCache(ctr, (text) => this.#error(text));
  }

  /** `${ns} ${containerId}` → image ref, or null for containers without an image. */
  get images(): Map<string, string | null> {
    return this.cache.images;
  }

  /** Makes the next flush rewrite `image_pulls` (e.g. to drop corrupt lines set aside). */
  rewritePulls(): void {
    this.#pullsDirty = true;
  }

  get dirty(): boolean {
    return this.#dirty || this.#pullsDirty;
  }

  #say(text: string): void {
    if (!this.opts.quiet) println(this.io.stdout, text);
  }

  #error(text: string): void {
    println(this.io.stderr, `ERROR ${text}`);
  }

  /**
   * Replaces what it knows of containers with `ctr container ls` of every namespace. With
   * `catchUp` (after a reconnect), a container it did not know that has a task now was started
   * while no events reached it: its start is recorded at the current time, so the gap loses no
   * use (a container created and gone within the gap still does).
   */
  async resync(catchUp = false): Promise<void> {
    const appeared = await this.cache.resync();
    if (!catchUp || appeared.length === 0) return;
    const now = this.io.now();
    for (const ns of new Set(appeared.map((c) => c.ns))) {
      const r = await this.ctr.run(["-n", ns, "task", "ls"]);
      if (r.code !== 0) {
        this.#error(`cannot catch up on ${ns}: ${r.stderr.trim().split("\n").at(-1)}`);
        continue;
      }
      const tasks = new Set(parseTaskLs(r.stdout).map((t) => t.id));
      for (const c of appeared) {
        if (c.ns !== ns || !tasks.has(c.id)) continue;
        const refs = await this.cache.refsOf(ns, c.id, true);
        if (refs !== undefined) this.#recordAll("T", now, ns, refs);
      }
    }
  }

  /** Applies one use to the DB and logs it. */
  #record(use: ImageUse): void {
    const done = applyEvent(this.entries, use);
    if (done.kind === "unsafe") return this.#error(done.error);
    if (done.line !== null) this.#say(done.line);
    if (done.kind === "recorded") {
      this.#dirty = true;
      this.stats.recorded++;
    }
  }

  /** Records `mark` for each ref of `refs` (null: a container without image). */
  #recordAll(mark: ImageUse["mark"], time: number, ns: string, refs: string[] | null): void {
    if (refs === null) return this.#record({ mark, time, ns, ref: null });
    for (const ref of refs) this.#record({ mark, time, ns, ref });
  }

  /** Handles one line of `ctr event`. Never throws. */
  async handleLine(line: string): Promise<void> {
    let event: CtrEvent;
    try {
      // An ignored topic's payload is parsed only for its first line, which is printed.
      event = parseEventLineFor(line, (t) => READ_TOPICS.has(t) || !this.#topics.has(t));
    } catch (e) {
      this.#error(`${errorText(e)}, skipping`);
      return;
    }
    try {
      await this.handle(event);
    } catch (e) {
      this.#error(`event ${event.topic} in ${event.ns}: ${errorText(e)}, skipping`);
    }
  }

  /** Handles one parsed event. */
  async handle(e: CtrEvent): Promise<void> {
    this.stats.events++;
    this.stats.lastEventTime = e.time;
    if (!this.#topics.has(e.topic)) {
      this.#topics.add(e.topic);
      this.#say(`D (first visual of event action '${e.topic}') data: ${JSON.stringify(e.payload)}`);
    }
    const p = e.payload;
    switch (e.topic) {
      case "/containers/create":
      case "/containers/update": {
        if (field(p, "id") === undefined) throw new Error("no container id in payload");
        this.cache.observe(e);
        const image = field(p, "image") || null;
        if (e.topic === "/containers/create") {
          this.#record({ mark: "C", time: e.time, ns: e.ns, ref: image });
        }
        return;
      }
      case "/images/delete":
        this.cache.observe(e);
        return;
      case "/images/create":
      case "/images/update": {
        this.cache.observe(e);
        // A pull (also of a tag whose content is already here) or a re-tag: a use of the ref.
        const name = field(p, "name");
        if (name === undefined || name === "") throw new Error("no image name in payload");
        if (!recordPull(this.pulls, e.ns, name, e.time)) return this.#error(unsafeText(e.ns, name));
        this.#pullsDirty = true;
        this.stats.recorded++;
        this.#say(`P ${Math.floor(e.time)} ${e.ns} ${name}`);
        return;
      }
      case "/snapshot/prepare": {
        this.cache.observe(e);
        const key = field(p, "key");
        // A pod's image volume (containerd 2.1+ CRI): its start is the mount.
        if (key !== undefined) {
          this.#recordAll("V", e.time, e.ns, await this.cache.volumeMounted(e.ns, key));
        }
        return;
      }
      case "/snapshot/commit":
      case "/containers/delete":
        this.cache.observe(e);
        return;
      case "/snapshot/remove": {
        this.cache.observe(e);
        const key = field(p, "key");
        if (key !== undefined) {
          this.#recordAll("v", e.time, e.ns, this.cache.volumeRemoved(e.ns, key));
        }
        return;
      }
      case "/tasks/create": {
        const id = field(p, "container_id");
        if (id === undefined) throw new Error("no container_id in payload");
        const refs = await this.cache.refsOf(e.ns, id, true);
        if (refs !== undefined) this.#recordAll("T", e.time, e.ns, refs);
        return;
      }
      case "/tasks/exit": {
        const id = field(p, "container_id");
        if (id === undefined) throw new Error("no container_id in payload");
        if (field(p, "id") !== id) return; // an exec ended, not the container
        const refs = await this.cache.refsOf(e.ns, id, false);
        const time = payloadTime(p.exited_at) ?? e.time;
        if (refs !== undefined) this.#recordAll("t", time, e.ns, refs);
        return;
      }
    }
  }

  #metricsSignature = "";
  #metricsAt = 0;

  /** Writes the recorder's metrics when its counters moved, or once a minute. */
  async writeMetricsIfDue(): Promise<void> {
    if (!this.opts.metrics) return;
    const s = this.stats;
    const signature = `${s.events} ${s.recorded} ${s.reconnects} ${s.writes} ${s.connected}`;
    if (signature === this.#metricsSignature && this.io.now() - this.#metricsAt < 60) return;
    try {
      await writeMetrics(this.opts.stateDir, "ctre_recorder_", recorderFamilies(s, this.io.now()));
      this.#metricsSignature = signature;
      this.#metricsAt = this.io.now();
    } catch (e) {
      this.#error(`cannot write metrics: ${errorText(e)}`);
    }
  }

  /** The periodic work: write the DB if dirty, then the metrics if due. */
  async tick(): Promise<void> {
    await this.flush();
    await this.writeMetricsIfDue();
  }

  /** Writes the DB if anything changed (or `force`), after dropping expired entries. */
  async flush(force = false): Promise<void> {
    if (this.#pullsDirty) await this.#flushPulls();
    if (!this.#dirty && !force) return;
    this.#dirty = false;
    expire(this.entries, this.io.now() - this.opts.keepWindow);
    try {
      await writeAtomic(join(this.opts.stateDir, USAGE_FILE), formatUsageDb(this.entries));
      this.stats.writes++;
    } catch (e) {
      this.#dirty = true;
      this.#error(errorText(e));
    }
  }

  async #flushPulls(): Promise<void> {
    this.#pullsDirty = false;
    expirePulls(this.pulls, this.io.now() - this.opts.keepWindow);
    try {
      await writePullDb(join(this.opts.stateDir, PULLS_FILE), this.pulls);
      this.stats.writes++;
    } catch (e) {
      this.#pullsDirty = true;
      this.#error(errorText(e));
    }
  }
}

/** Moves corrupt lines of `<state-dir>/<file>` to `<file>.rejected` and says so on stderr. */
async function keepRejected(stateDir: string, lines: RejectedLine[], io: Io, file: string) {
  if (lines.length === 0) return;
  const path = join(stateDir, file);
  await setAsideRejected(path, lines, io.now());
  println(io.stderr, `ERROR ${lines.length} corrupt lines of ${file} moved to ${path}.rejected`);
}

/** Sleeps `ms` unless `signal` aborts first. */
function sleep(io: Io, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const onAbort = () => resolve();
    signal.addEventListener("abort", onAbort, { once: true });
    io.sleep(ms).then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}

/**
 * Runs the recorder until `io.signal` aborts (never, without one). Needs --allow-run=ctr and
 * read/write on the state dir. Returns the exit code.
 */
export async function record(ctr: Ctr, opts: RecordOptions, io: Io): Promise<number> {
  const signal = io.signal ?? new AbortController().signal;
  const lock = await acquireLock(opts.stateDir, "record-image-starts");
  try {
    const db = await loadUsageDb(join(opts.stateDir, USAGE_FILE));
    await keepRejected(opts.stateDir, db.rejected, io, USAGE_FILE);
    const pulls = await loadPullDb(join(opts.stateDir, PULLS_FILE));
    await keepRejected(opts.stateDir, pulls.rejected, io, PULLS_FILE);
    const rec = new Recorder(ctr, opts, io, db.entries, pulls.entries);
    // Rewrite at once so the corrupt lines leave the DB (and are not rejected again next start).
    if (pulls.rejected.length) rec.rewritePulls();
    if (db.rejected.length || pulls.rejected.length) await rec.flush(db.rejected.length > 0);
    let flushing: Promise<void> = Promise.resolve();
    const timer = setInterval(() => {
      flushing = flushing.then(() => rec.tick());
    }, opts.flushInterval * 1000);
    try {
      await follow(rec, io, signal);
    } finally {
      clearInterval(timer);
      await flushing;
      await rec.tick();
    }
    return 0;
  } finally {
    lock.release();
  }
}

async function follow(rec: Recorder, io: Io, signal: AbortSignal): Promise<void> {
  let backoff = BACKOFF_START_S;
  let attempt = 0;
  let connectedBefore = false;
  if (!rec.opts.quiet) println(io.stdout, "Listening for container start events");
  while (!signal.aborted) {
    const started = io.now();
    let stream: CtrStream | undefined;
    let why: string;
    const eventsBefore = rec.stats.events;
    try {
      stream = rec.ctr.stream(["event"]);
      const s = stream;
      const onAbort = () => s.stop();
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        // While containerd is down ctr waits its whole dial timeout (10 s) before failing:
        // a signal must not wait for that.
        await new Promise<void>((resolve, reject) => {
          const onAbortResync = () => resolve();
          signal.addEventListener("abort", onAbortResync, { once: true });
          rec.resync(connectedBefore).then(resolve, reject).finally(() =>
            signal.removeEventListener("abort", onAbortResync)
          );
        });
        if (!signal.aborted) {
          connectedBefore = rec.stats.connected = true;
          await rec.writeMetricsIfDue();
        }
        for await (const line of s.lines) {
          if (signal.aborted) break;
          await rec.handleLine(line);
        }
      } finally {
        signal.removeEventListener("abort", onAbort);
        s.stop();
        rec.stats.connected = false;
      }
      const end = await s.done;
      why = `ctr event ended with code ${end.code}${
        end.stderr.trim() ? `: ${end.stderr.trim().split("\n").at(-1)}` : ""
      }`;
    } catch (e) {
      stream?.stop();
      why = errorText(e);
    }
    if (signal.aborted) break;
    if (rec.stats.events > eventsBefore || io.now() - started > BACKOFF_MAX_S) {
      backoff = BACKOFF_START_S;
      attempt = 0;
    }
    attempt++;
    rec.stats.reconnects++;
    println(io.stderr, `ERROR ${why}; reconnecting in ${backoff}s (attempt ${attempt})`);
    await rec.writeMetricsIfDue();
    await sleep(io, backoff * 1000, signal);
    backoff = Math.min(backoff * 2, BACKOFF_MAX_S);
  }
}
