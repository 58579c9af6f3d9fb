/**
 * `ctre record-image-starts`: follows `ctr event` and records per (namespace, image ref) the
 * last container start and stop in the usage DB. It must not die: malformed lines are logged
 * and skipped, a vanished container is logged and skipped, and when `ctr event` ends
 * (containerd restarted) it reconnects with capped backoff. Only the abort signal of the io
 * (SIGTERM, SIGINT) ends it, after a final write.
 *
 * Its parts: what a use does to the DB is pure (lib/policy/usage_event.ts); what each event
 * means is handle_event.ts; which refs a container runs from is the image cache
 * (container_images.ts, the one that asks containerd); the DBs and their writing are
 * usage_store.ts; this file owns the I/O and timing: following, reconnecting, metrics, log lines.
 *
 * @module
 */
import { join } from "node:path";
import { ContainerdImageCache, type ImageCache } from "./container_images.ts";
import type { Containerd, EventStream } from "../ctr/gateway.ts";
import { CtrExitError, errorText, lastStderrLine, ParseError } from "../core/errors.ts";
import type { CtrEvent } from "../ctr/events.ts";
import { type Io, println } from "../core/io.ts";
import { type RejectedLine, setAsideRejected } from "../state/line_file.ts";
import { acquireLock } from "../state/lock.ts";
import { recorderFamilies, type RecorderStats } from "./metric_families.ts";
import { writeMetrics } from "../state/metrics_file.ts";
import { loadPullDb, PULLS_FILE } from "../state/pull_db.ts";
import { type ImageUse, unsafeText } from "../policy/usage_event.ts";
import { loadUsageDb, type Usage, USAGE_FILE } from "../state/usage_db.ts";
import { UsageStore } from "./usage_store.ts";
import { handleEvent, READ_TOPICS } from "./handle_event.ts";

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

export const BACKOFF_START_S = 1;
export const BACKOFF_MAX_S = 30;

/** Writes the recorder's metrics when its counters moved, or once a minute. */
function metricsWriter(opts: RecordOptions, io: Io, onError: (text: string) => void) {
  let signature = "";
  let at = 0;
  return async (s: RecorderStats): Promise<void> => {
    if (!opts.metrics) return;
    const now = `${s.events} ${s.recorded} ${s.reconnects} ${s.writes} ${s.connected}`;
    if (now === signature && io.now() - at < 60) return;
    try {
      await writeMetrics(opts.stateDir, "ctre_recorder_", recorderFamilies(s, io.now()));
      signature = now;
      at = io.now();
    } catch (e) {
      onError(`cannot write metrics: ${errorText(e)}`);
    }
  };
}

function newStats(): RecorderStats {
  return {
    events: 0,
    recorded: 0,
    writes: 0,
    reconnects: 0,
    lastEventTime: null,
    connected: false,
  };
}

/** The recorder's state and event handling, separate from the process loop for tests. */
export class Recorder {
  readonly stats: RecorderStats = newStats();
  /** Which refs containers and image volumes run from. */
  readonly cache: ImageCache;
  /** The usage DB and the pull DB, and their writing. */
  readonly store: UsageStore;
  /** Writes the metrics if due (lib/recorder/metric_families.ts). */
  readonly writeMetricsIfDue: () => Promise<void>;
  /** The topics seen so far (the first event of each is printed whole). */
  readonly topicsSeen = new Set<string>();

  constructor(
    readonly containerd: Containerd,
    readonly opts: RecordOptions,
    readonly io: Io,
    entries: Map<string, Usage>,
    pulls: Map<string, number> = new Map(),
  ) {
    const onError = (text: string) => this.error(text);
    this.cache = new ContainerdImageCache(containerd, onError);
    this.store = new UsageStore(
      {
        stateDir: opts.stateDir,
        keepWindow: opts.keepWindow,
        now: () => io.now(),
        onError,
        onWrite: () => this.stats.writes++,
      },
      entries,
      pulls,
    );
    const write = metricsWriter(opts, io, onError);
    this.writeMetricsIfDue = () => write(this.stats);
  }

  get entries(): Map<string, Usage> {
    return this.store.entries;
  }

  get pulls(): Map<string, number> {
    return this.store.pulls;
  }

  /** `${ns} ${containerId}` → image ref, or null for containers without an image. */
  get images(): Map<string, string | null> {
    return this.cache.images;
  }

  get dirty(): boolean {
    return this.store.dirty;
  }

  #say(text: string): void {
    if (!this.opts.quiet) println(this.io.stdout, text);
  }

  /** Logs an error line (the recorder goes on). */
  error(text: string): void {
    println(this.io.stderr, `ERROR ${text}`);
  }

  /**
   * Replaces what it knows of containers with the containers of every namespace. With
   * `catchUp` (after a reconnect), a container it did not know that has a task now was started
   * while no events reached it: its start is recorded at the current time, so the gap loses no
   * use (a container created and gone within the gap still does).
   */
  async resync(catchUp = false): Promise<void> {
    const appeared = await this.cache.resync();
    if (catchUp && appeared.length > 0) await catchUpOn(this, appeared);
  }

  /** Records `mark` for each ref of `refs` (null: a container without image), logging each. */
  recordAll(mark: ImageUse["mark"], time: number, ns: string, refs: (string | null)[] | null) {
    for (const ref of refs ?? [null]) {
      const done = this.store.apply({ mark, time, ns, ref });
      if (done.kind === "unsafe") {
        this.error(done.error);
        continue;
      }
      if (done.line !== null) this.#say(done.line);
      if (done.kind === "recorded") this.stats.recorded++;
    }
  }

  /** Records a pull of image `name` (created or updated), logging it. */
  recordPull(time: number, ns: string, name: string): void {
    if (!this.store.pull(ns, name, time)) return this.error(unsafeText(ns, name));
    this.stats.recorded++;
    this.#say(`P ${Math.floor(time)} ${ns} ${name}`);
  }

  /** Handles one event of the stream (a line that did not parse: logged). Never throws. */
  async receive(item: CtrEvent | ParseError): Promise<void> {
    if (item instanceof ParseError) return this.error(`${errorText(item)}, skipping`);
    this.stats.events++;
    this.stats.lastEventTime = item.time;
    if (!this.topicsSeen.has(item.topic)) {
      this.topicsSeen.add(item.topic);
      const data = JSON.stringify(item.payload);
      this.#say(`D (first visual of event action '${item.topic}') data: ${data}`);
    }
    try {
      await handleEvent(this, item);
    } catch (e) {
      this.error(`event ${item.topic} in ${item.ns}: ${errorText(e)}, skipping`);
    }
  }

  /** The periodic work: write the DBs if changed, then the metrics if due. */
  async tick(): Promise<void> {
    await this.flush();
    await this.writeMetricsIfDue();
  }

  /** Writes the DBs if anything changed (the usage DB also when `force`). */
  flush(force = false): Promise<void> {
    return this.store.flush(force);
  }
}

/**
 * Whether `rec` reads the payload of `topic`: a topic it handles, or the first of a topic, which
 * it prints. The others' JSON is not parsed (lib/ctr/events.ts).
 */
function wantsPayload(rec: Recorder, topic: string): boolean {
  return READ_TOPICS.has(topic) || !rec.topicsSeen.has(topic);
}

/** Records a start now for each container of `appeared` that has a task (after a gap). */
async function catchUpOn(rec: Recorder, appeared: { ns: string; id: string }[]): Promise<void> {
  const now = rec.io.now();
  for (const ns of new Set(appeared.map((c) => c.ns))) {
    let tasks: Set<string>;
    try {
      tasks = new Set((await rec.containerd.listTasks(ns)).map((t) => t.id));
    } catch (e) {
      if (!(e instanceof CtrExitError)) throw e;
      rec.error(`cannot catch up on ${ns}: ${lastStderrLine(e.stderr)}`);
      continue;
    }
    for (const c of appeared.filter((c) => c.ns === ns && tasks.has(c.id))) {
      const refs = await rec.cache.refsOf(ns, c.id, true);
      if (refs !== undefined) rec.recordAll("T", now, ns, refs);
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
export async function record(
  containerd: Containerd,
  opts: RecordOptions,
  io: Io,
): Promise<number> {
  const signal = io.signal ?? new AbortController().signal;
  const lock = await acquireLock(opts.stateDir, "record-image-starts");
  try {
    const db = await loadUsageDb(join(opts.stateDir, USAGE_FILE));
    await keepRejected(opts.stateDir, db.rejected, io, USAGE_FILE);
    const pulls = await loadPullDb(join(opts.stateDir, PULLS_FILE));
    await keepRejected(opts.stateDir, pulls.rejected, io, PULLS_FILE);
    const rec = new Recorder(containerd, opts, io, db.entries, pulls.entries);
    // Rewrite at once so the corrupt lines leave the DB (and are not rejected again next start).
    if (pulls.rejected.length) rec.store.rewritePulls();
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
    let stream: EventStream | undefined;
    let why: string;
    const eventsBefore = rec.stats.events;
    try {
      stream = rec.containerd.events((topic) => wantsPayload(rec, topic));
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
        for await (const item of s.events) {
          if (signal.aborted) break;
          await rec.receive(item);
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
