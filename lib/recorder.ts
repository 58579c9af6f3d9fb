/**
 * `ctre record-image-starts`: follows `ctr event` and records per (namespace, image ref) the
 * last container start and stop in the usage DB. It must not die: malformed lines are logged
 * and skipped, a vanished container is logged and skipped, and when `ctr event` ends
 * (containerd restarted) it reconnects with capped backoff. Only the abort signal (SIGTERM,
 * SIGINT) ends it, after a final write.
 *
 * @module
 */
import { join } from "node:path";
import type { RecordOptions } from "./cli.ts";
import { type Ctr, ctrOk, type CtrStream } from "./ctr.ts";
import { errorText } from "./errors.ts";
import { refsOfContainerSnapshot } from "./inventory.ts";
import { type CtrEvent, field, parseEventLine, payloadTime } from "./events.ts";
import { type Io, println } from "./io.ts";
import {
  parseContainerInfo,
  parseContainerLs,
  parseImageLs,
  parseNamespaces,
  type SnapshotRow,
} from "./listings.ts";
import { imageVolumeOf } from "./lineage.ts";
import { acquireLock } from "./lock.ts";
import { type Family, writeMetrics } from "./metrics.ts";
import { expirePulls, loadPullDb, PULLS_FILE, recordPull, writePullDb } from "./pull_db.ts";
import {
  expire,
  formatUsageDb,
  loadUsageDb,
  mergeUsage,
  safeToken,
  type Usage,
  usageKey,
} from "./usage_db.ts";
import { writeAtomic } from "./state_files.ts";

export const BACKOFF_START_S = 1;
export const BACKOFF_MAX_S = 30;

export interface RecorderStats {
  events: number;
  recorded: number;
  writes: number;
  reconnects: number;
  lastEventTime: number | null;
}

/** The recorder's state and event handling, separate from the process loop for tests. */
export class Recorder {
  readonly entries: Map<string, Usage>;
  readonly stats: RecorderStats = {
    events: 0,
    recorded: 0,
    writes: 0,
    reconnects: 0,
    lastEventTime: null,
  };
  /** `${ns} ${containerId}` → image ref, or null for containers without an image. */
  readonly images = new Map<string, string | null>();
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

  /** Replaces what it knows of containers with `ctr container ls` of every namespace. */
  async resync(): Promise<void> {
    const namespaces = parseNamespaces(await ctrOk(this.ctr, ["namespace", "ls", "-q"]));
    const lists = await Promise.all(
      namespaces.map(async (ns) => ({
        ns,
        rows: parseContainerLs(await ctrOk(this.ctr, ["-n", ns, "container", "ls"])),
      })),
    );
    this.images.clear();
    for (const { ns, rows } of lists) {
      for (const c of rows) this.images.set(`${ns} ${c.id}`, c.image);
    }
  }

  /** The image of a container: from what it learned, else one `ctr containers info`. */
  async #imageOf(ns: string, id: string): Promise<string | null | undefined> {
    const key = `${ns} ${id}`;
    if (this.images.has(key)) return this.images.get(key);
    const r = await this.ctr.run(["-n", ns, "containers", "info", id]);
    if (r.code !== 0) {
      this.#error(
        `container ${ns} ${id} is already gone, skipping (${r.stderr.trim().split("\n").at(-1)})`,
      );
      return undefined;
    }
    try {
      const image = parseContainerInfo(r.stdout).image || null;
      this.images.set(key, image);
      return image;
    } catch (e) {
      this.#error(`container ${ns} ${id}: ${errorText(e)}`);
      return undefined;
    }
  }

  /** `${ns} ${key}` → parent, from `/snapshot/prepare` and `/snapshot/commit` events. */
  #snapshotParents = new Map<string, string>();

  /** The parent chain of snapshot `key` as far as events told it, as snapshot rows. */
  #seenSnapshots(ns: string, key: string): SnapshotRow[] {
    const rows: SnapshotRow[] = [];
    const visited = new Set<string>();
    let cur = key;
    while (!visited.has(cur)) {
      visited.add(cur);
      const parent = this.#snapshotParents.get(`${ns} ${cur}`);
      if (parent === undefined) {
        if (cur !== key) rows.push({ key: cur, parent: null, kind: "Committed" });
        break;
      }
      rows.push({ key: cur, parent, kind: cur === key ? "Active" : "Committed" });
      cur = parent;
    }
    return rows;
  }

  /** `${ns} ${key}` → refs of the image an image volume's snapshot mounts. */
  #volumeRefs = new Map<string, string[]>();

  /** The refs whose target is `digest` (one `ctr image ls`); empty on failure, logged. */
  async #refsOfDigest(ns: string, digest: string): Promise<string[]> {
    try {
      const images = parseImageLs(await ctrOk(this.ctr, ["-n", ns, "image", "ls"]));
      return images.filter((i) => i.digest === digest).map((i) => i.ref).sort();
    } catch (e) {
      this.#error(`image volume of ${digest} in ${ns}: ${errorText(e)}`);
      return [];
    }
  }

  /** `${ns} ${id}` → refs of a container without image, found through its snapshot. */
  #snapshotRefs = new Map<string, string[]>();

  /**
   * The refs a container without `Image` (docker's) runs from, through its snapshot; looked up
   * at start (`fresh`), remembered for its exit. Empty when none is found.
   */
  async #refsOfSnapshot(ns: string, id: string, fresh: boolean): Promise<string[]> {
    const key = `${ns} ${id}`;
    const known = this.#snapshotRefs.get(key);
    if (known !== undefined && !fresh) return known;
    try {
      const refs = await refsOfContainerSnapshot(this.ctr, ns, id, this.#seenSnapshots(ns, id));
      if (refs.length > 0) this.#snapshotRefs.set(key, refs);
      return refs;
    } catch (e) {
      this.#error(`container ${ns} ${id}: cannot map its snapshot to an image: ${errorText(e)}`);
      return [];
    }
  }

  #record(letter: string, time: number, ns: string, ref: string | null, start: boolean): void {
    const t = Math.floor(time);
    if (ref === null) {
      if (ns !== "moby") this.#say(`${letter} ${t} ${ns} NO_IMAGE_REF`);
      return;
    }
    if (!safeToken(ns) || !safeToken(ref)) {
      this.#error(
        `not recording ${JSON.stringify(ns)} ${
          JSON.stringify(ref)
        }: whitespace or control characters`,
      );
      return;
    }
    const key = usageKey(ns, ref);
    this.entries.set(key, mergeUsage(this.entries.get(key), start ? t : null, start ? null : t));
    this.#dirty = true;
    this.stats.recorded++;
    this.#say(`${letter} ${t} ${ns} ${ref}`);
  }

  /** Handles one line of `ctr event`. Never throws. */
  async handleLine(line: string): Promise<void> {
    let event: CtrEvent;
    try {
      event = parseEventLine(line);
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
        const id = field(p, "id");
        if (id === undefined) throw new Error("no container id in payload");
        const image = field(p, "image") || null;
        this.images.set(`${e.ns} ${id}`, image);
        if (e.topic === "/containers/create") this.#record("C", e.time, e.ns, image, true);
        return;
      }
      case "/images/create":
      case "/images/update": {
        // A pull (also of a tag whose content is already here) or a re-tag: a use of the ref.
        const name = field(p, "name");
        if (name === undefined || name === "") throw new Error("no image name in payload");
        if (!recordPull(this.pulls, e.ns, name, e.time)) {
          this.#error(
            `not recording ${JSON.stringify(e.ns)} ${
              JSON.stringify(name)
            }: whitespace or control characters`,
          );
          return;
        }
        this.#pullsDirty = true;
        this.stats.recorded++;
        this.#say(`P ${Math.floor(e.time)} ${e.ns} ${name}`);
        return;
      }
      case "/snapshot/prepare": {
        const key = field(p, "key");
        const parent = field(p, "parent");
        if (key !== undefined && parent) this.#snapshotParents.set(`${e.ns} ${key}`, parent);
        const volume = key === undefined ? null : imageVolumeOf(key);
        if (volume !== null) {
          // A pod's image volume (containerd 2.1+ CRI): its start is the mount.
          const refs = await this.#refsOfDigest(e.ns, volume.digest);
          this.#volumeRefs.set(`${e.ns} ${key}`, refs);
          for (const ref of refs) this.#record("V", e.time, e.ns, ref, true);
        }
        return;
      }
      case "/snapshot/commit": {
        const key = field(p, "key");
        const name = field(p, "name");
        const parent = this.#snapshotParents.get(`${e.ns} ${key}`);
        this.#snapshotParents.delete(`${e.ns} ${key}`);
        if (name !== undefined && parent !== undefined) {
          this.#snapshotParents.set(`${e.ns} ${name}`, parent);
        }
        return;
      }
      case "/snapshot/remove": {
        const key = field(p, "key");
        if (key !== undefined) this.#snapshotParents.delete(`${e.ns} ${key}`);
        const refs = this.#volumeRefs.get(`${e.ns} ${key}`);
        this.#volumeRefs.delete(`${e.ns} ${key}`);
        for (const ref of refs ?? []) this.#record("v", e.time, e.ns, ref, false);
        return;
      }
      case "/containers/delete": {
        const id = field(p, "id");
        if (id !== undefined) this.images.delete(`${e.ns} ${id}`);
        if (id !== undefined) this.#snapshotRefs.delete(`${e.ns} ${id}`);
        return;
      }
      case "/tasks/create": {
        const id = field(p, "container_id");
        if (id === undefined) throw new Error("no container_id in payload");
        const image = await this.#imageOf(e.ns, id);
        if (image === null) {
          for (const ref of await this.#refsOfSnapshot(e.ns, id, true)) {
            this.#record("T", e.time, e.ns, ref, true);
          }
          if (this.#snapshotRefs.has(`${e.ns} ${id}`)) return;
        }
        if (image !== undefined) this.#record("T", e.time, e.ns, image, true);
        return;
      }
      case "/tasks/exit": {
        const id = field(p, "container_id");
        if (id === undefined) throw new Error("no container_id in payload");
        if (field(p, "id") !== id) return; // an exec ended, not the container
        const image = await this.#imageOf(e.ns, id);
        const time = payloadTime(p.exited_at) ?? e.time;
        if (image === null) {
          for (const ref of await this.#refsOfSnapshot(e.ns, id, false)) {
            this.#record("t", time, e.ns, ref, false);
          }
          if (this.#snapshotRefs.has(`${e.ns} ${id}`)) return;
        }
        if (image !== undefined) this.#record("t", time, e.ns, image, false);
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
    const signature = `${s.events} ${s.recorded} ${s.reconnects} ${s.writes}`;
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
      await writeAtomic(join(this.opts.stateDir, "image_starts"), formatUsageDb(this.entries));
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

/** Appends corrupt lines of `<state-dir>/<file>` to `<file>.rejected` so none is lost silently. */
async function keepRejected(
  stateDir: string,
  lines: { lineNo: number; line: string; reason: string }[],
  io: Io,
  file = "image_starts",
) {
  if (lines.length === 0) return;
  const path = join(stateDir, `${file}.rejected`);
  const stamp = new Date(io.now() * 1000).toISOString();
  const text = lines.map((r) => `# ${stamp} line ${r.lineNo}: ${r.reason}\n${r.line}\n`).join("");
  await Deno.writeTextFile(path, text, { append: true, create: true });
  println(io.stderr, `ERROR ${lines.length} corrupt lines of ${file} moved to ${path}`);
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
 * Runs the recorder until `signal` aborts. Needs --allow-run=ctr and read/write on the state
 * dir. Returns the exit code.
 */
export async function record(
  ctr: Ctr,
  opts: RecordOptions,
  io: Io,
  signal: AbortSignal,
): Promise<number> {
  const lock = await acquireLock(opts.stateDir, "record-image-starts");
  try {
    const db = await loadUsageDb(join(opts.stateDir, "image_starts"));
    await keepRejected(opts.stateDir, db.rejected, io);
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
          rec.resync().then(resolve, reject).finally(() =>
            signal.removeEventListener("abort", onAbortResync)
          );
        });
        for await (const line of s.lines) {
          if (signal.aborted) break;
          await rec.handleLine(line);
        }
      } finally {
        signal.removeEventListener("abort", onAbort);
        s.stop();
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
    await sleep(io, backoff * 1000, signal);
    backoff = Math.min(backoff * 2, BACKOFF_MAX_S);
  }
}

/** The `ctre_recorder_*` metric families. */
export function recorderFamilies(s: RecorderStats, now: number): Family[] {
  const one = (name: string, type: Family["type"], help: string, value: number): Family => ({
    name,
    help,
    type,
    samples: [{ value }],
  });
  return [
    one(
      "ctre_recorder_events_total",
      "counter",
      "ctr events read since the recorder started.",
      s.events,
    ),
    one(
      "ctre_recorder_events_recorded_total",
      "counter",
      "Container starts and stops recorded since the recorder started.",
      s.recorded,
    ),
    one(
      "ctre_recorder_reconnects_total",
      "counter",
      "Times ctr event ended and the recorder reconnected.",
      s.reconnects,
    ),
    one("ctre_recorder_db_writes_total", "counter", "Writes of the usage DB.", s.writes),
    one(
      "ctre_recorder_last_event_timestamp_seconds",
      "gauge",
      "Time of the last event seen (unix time; 0 when none yet).",
      s.lastEventTime ?? 0,
    ),
    one(
      "ctre_recorder_last_update_timestamp_seconds",
      "gauge",
      "When these metrics were written.",
      now,
    ),
  ];
}
