/**
 * End to end: `ctre record-image-starts` under the shipped permissions, following the events of
 * a private, real containerd while real containers start and stop. Assertions are on the usage
 * DB file it writes, on its output, and on how it exits.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type TestContainerd, withContainerd } from "./support/containerd.ts";
import { type CliOptions, runCtre, spawnCtre, tempStateDir } from "./support/cli.ts";
import { parseUsageDb, type Usage, type UsageDb } from "../lib/state/usage_db.ts";

const DAY = 86400;
/** Seconds of slack between the test's clock readings and the recorded (floored) times. */
const SLACK = 1;

const img = (name: string) => `docker.io/library/${name}:1`;
/** The image readiness probes create containers from, imported into "default" by session(). */
const PROBE = img("rec-probe");

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

/** A running `ctre record-image-starts` whose stdout and stderr are collected as they come. */
class Daemon {
  readonly child: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  status: Deno.CommandStatus | undefined;
  readonly done: Promise<Deno.CommandStatus>;

  constructor(opts: CliOptions, args: string[]) {
    this.child = spawnCtre(["record-image-starts", ...args], opts);
    const pump = async (stream: ReadableStream<Uint8Array>, into: "stdout" | "stderr") => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) this[into] += text;
    };
    const pumps = Promise.all([
      pump(this.child.stdout, "stdout"),
      pump(this.child.stderr, "stderr"),
    ]);
    this.done = Promise.all([this.child.status, pumps]).then(([status]) => {
      this.status = status;
      return status;
    });
  }

  get pid(): number {
    return this.child.pid;
  }

  get exited(): boolean {
    return this.status !== undefined;
  }

  get output(): string {
    return `--- stdout:\n${this.stdout}--- stderr:\n${this.stderr}`;
  }

  /** Waits until `re` matches the text of `stream` from offset `from` on. */
  async waitFor(
    stream: "stdout" | "stderr",
    re: RegExp,
    timeoutMs = 10_000,
    from = 0,
  ): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const m = re.exec(this[stream].slice(from));
      if (m) return m;
      if (this.exited) {
        throw new Error(
          `ctre exited (${this.status?.code}) before ${stream} showed ${re}\n${this.output}`,
        );
      }
      if (Date.now() > deadline) {
        throw new Error(`${stream} did not show ${re} within ${timeoutMs} ms\n${this.output}`);
      }
      await sleep(50);
    }
  }

  kill(signal: Deno.Signal): void {
    if (this.exited) return;
    try {
      this.child.kill(signal);
    } catch {
      // already exited
    }
  }

  /** Sends `signal` and waits for the exit (failing, after a SIGKILL, if it takes > 15 s). */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    this.kill(signal);
    const timeout = sleep(15_000).then(() => "timeout" as const);
    if (await Promise.race([this.done, timeout]) === "timeout") {
      this.kill("SIGKILL");
      await this.done;
      throw new Error(`ctre did not exit within 15 s of ${signal}\n${this.output}`);
    }
    return await this.done;
  }
}

interface Session {
  c: TestContainerd;
  stateDir: string;
  dbPath: string;
  opts: CliOptions;
  /** Starts a daemon with `--flush-interval <flush>` and `args`; killed at the end if running. */
  start(args?: string[], flush?: string): Daemon;
}

/** A private containerd with the probe image, a fresh state dir, and daemons always reaped. */
async function session(fn: (s: Session) => Promise<void>): Promise<void> {
  await withContainerd(async (c) => {
    const stateDir = await tempStateDir();
    const daemons: Daemon[] = [];
    const opts = { address: c.address, stateDir };
    try {
      await c.importImage("default", PROBE, "rec-probe");
      await fn({
        c,
        stateDir,
        dbPath: join(stateDir, "image_starts"),
        opts,
        start(args = [], flush = "1s") {
          const d = new Daemon(opts, ["--flush-interval", flush, ...args]);
          daemons.push(d);
          return d;
        },
      });
    } finally {
      for (const d of daemons) d.kill("SIGKILL");
      await Promise.all(daemons.map((d) => d.done));
      await Deno.remove(stateDir, { recursive: true }).catch(() => {});
    }
  });
}

let probes = 0;

/**
 * Waits until the daemon follows the events: creates probe containers until one is seen (a C
 * line on stdout, or with `quiet` an entry in the DB), then removes them.
 */
async function ready(
  s: Session,
  d: Daemon,
  { quiet = false, timeoutMs = 20_000 } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  if (!quiet) await d.waitFor("stdout", /^Listening for container start events$/m, timeoutMs);
  while (true) {
    const id = `probe-${++probes}`;
    const from = d.stdout.length;
    const since = Math.floor(Date.now() / 1000) - SLACK;
    // Quiet: the probe must be newer than what the DB held before it: an earlier daemon's probe
    // (within the slack) must not pass for this one's, or it is signalled before it listens.
    const seen = quiet
      ? (await readDb(s.dbPath).catch(() => undefined))?.entries.get(`default ${PROBE}`)?.start ?? 0
      : 0;
    await s.c.create("default", PROBE, id);
    try {
      if (quiet) {
        await waitDb(
          s.dbPath,
          (e) => (e.get(`default ${PROBE}`)?.start ?? 0) > Math.max(seen, since - 1),
          2500,
        );
      } else {
        await d.waitFor("stdout", new RegExp(`^C \\d+ default ${escape(PROBE)}$`, "m"), 1500, from);
      }
      return;
    } catch (e) {
      if (d.exited || Date.now() > deadline) throw e;
    } finally {
      await s.c.ctrOk(["-n", "default", "container", "rm", id]);
    }
  }
}

async function readDb(path: string): Promise<UsageDb> {
  try {
    return parseUsageDb(await Deno.readTextFile(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return parseUsageDb("");
    throw e;
  }
}

/** Polls the DB file until `ok(entries)`; fails with its content after `timeoutMs`. */
async function waitDb(
  path: string,
  ok: (entries: Map<string, Usage>) => boolean,
  timeoutMs = 5000,
): Promise<UsageDb> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const db = await readDb(path);
    if (ok(db.entries)) return db;
    if (Date.now() > deadline) {
      const text = await Deno.readTextFile(path).catch(() => "(no file)");
      throw new Error(`the DB did not get there within ${timeoutMs} ms:\n${text}`);
    }
    await sleep(100);
  }
}

/** Asserts that unix time `t` lies between two Date.now() readings (with SLACK). */
function assertWithin(t: number | null | undefined, fromMs: number, toMs: number, what: string) {
  assert.ok(typeof t === "number", `${what}: nothing recorded`);
  const lo = Math.floor(fromMs / 1000) - SLACK;
  const hi = Math.ceil(toMs / 1000) + SLACK;
  assert.ok(t >= lo && t <= hi, `${what} is ${t}, not within [${lo}, ${hi}]`);
}

/** The time on the one line `<letter> <time> <ns> <ref>` of stdout. */
function lineTime(stdout: string, letter: string, ns: string, ref: string): number {
  const re = new RegExp(`^${letter} (\\d+) ${escape(ns)} ${escape(ref)}$`, "gm");
  const times = [...stdout.matchAll(re)].map((m) => Number(m[1]));
  assert.equal(times.length, 1, `one "${letter} … ${ns} ${ref}" line in:\n${stdout}`);
  return times[0]!;
}

async function killTask(c: TestContainerd, ns: string, id: string): Promise<void> {
  await c.ctrOk(["-n", ns, "task", "kill", "-s", "SIGKILL", id]);
  await c.waitTask(ns, id, "STOPPED");
}

/** The refs `ctre prune --dry-run` lists (after the `NS REF_TO_PRUNE` header), as "ns ref". */
function listed(stdout: string): string[] {
  const lines = stdout.split("\n");
  const at = lines.indexOf("NS REF_TO_PRUNE");
  if (at < 0) return [];
  return lines.slice(at + 1).filter((l) => /^\S+ \S+$/.test(l)).sort();
}

Deno.test({
  name: "record-image-starts records real starts and stops, prints C/T/t lines, exits 0 on SIGTERM",
  async fn(t) {
    await session(async (s) => {
      const { c, dbPath } = s;
      const A = img("rec-a");
      const B = img("rec-b");
      await c.importImage("default", A, "rec-a");
      await c.importImage("other", B, "rec-b");

      await t.step("starts and stops land in the DB within the flush interval", async () => {
        const d = s.start();
        await ready(s, d);
        const t0 = Date.now();
        await c.run("default", A, "c-a");
        const t1 = Date.now();
        // An exec's exit is not the container's stop (checked by the one t line below).
        await c.ctrOk(["-n", "default", "task", "exec", "--exec-id", "x1", "c-a", "true"]);
        await killTask(c, "default", "c-a");
        const t2 = Date.now();
        await c.runToExit("other", B, "c-b");
        const t3 = Date.now();
        const db = await waitDb(
          dbPath,
          (e) => e.get(`default ${A}`)?.stop != null && e.get(`other ${B}`)?.stop != null,
          // one flush interval, plus slack for a loaded machine
          5000,
        );
        assert.deepEqual(db.rejected, []);
        const a = db.entries.get(`default ${A}`)!;
        const b = db.entries.get(`other ${B}`)!;
        assertWithin(a.start, t0, t1, "start of c-a");
        assertWithin(a.stop, t1, t2, "stop of c-a");
        assertWithin(b.start, t2, t3, "start of c-b");
        assertWithin(b.stop, t2, t3, "stop of c-b");

        // The printed lines say the same as the DB: start = the task's start (T, after C).
        assertWithin(lineTime(d.stdout, "C", "default", A), t0, t1, "C line of c-a");
        assert.equal(lineTime(d.stdout, "T", "default", A), a.start);
        assert.equal(lineTime(d.stdout, "t", "default", A), a.stop);
        assertWithin(lineTime(d.stdout, "C", "other", B), t2, t3, "C line of c-b");
        assert.equal(lineTime(d.stdout, "T", "other", B), b.start);
        assert.equal(lineTime(d.stdout, "t", "other", B), b.stop);

        // One D line per topic, the first time it is seen.
        const topics = [...d.stdout.matchAll(/^D \(first visual of event action '([^']+)'\)/gm)]
          .map((m) => m[1]);
        assert.equal(new Set(topics).size, topics.length, `D lines repeat a topic:\n${d.stdout}`);
        for (
          const topic of ["/containers/create", "/tasks/create", "/tasks/start", "/tasks/exit"]
        ) {
          assert.ok(topics.includes(topic), `no D line for ${topic}:\n${d.stdout}`);
        }
        for (const line of d.stdout.trimEnd().split("\n")) {
          assert.match(line, /^(Listening for container start events|[CTt] \d+ \S+ \S+|D .*)$/);
        }

        const status = await d.stop("SIGTERM");
        assert.equal(status.code, 0, d.output);
        assert.equal(d.stderr, "");
        const after = await readDb(dbPath);
        assert.deepEqual(after.rejected, []);
        assert.deepEqual(after.entries.get(`default ${A}`), a);
        assert.deepEqual(after.entries.get(`other ${B}`), b);
      });

      await t.step(
        "nothing is written before the flush interval, everything on SIGTERM",
        async () => {
          const before = await Deno.readTextFile(dbPath);
          const d = s.start([], "1h");
          await ready(s, d);
          const from = d.stdout.length;
          const t0 = Date.now();
          await c.runToExit("default", A, "c-a2");
          const t1 = Date.now();
          const m = await d.waitFor(
            "stdout",
            new RegExp(`^t (\\d+) default ${escape(A)}$`, "m"),
            5000,
            from,
          );
          await sleep(1500);
          assert.equal(await Deno.readTextFile(dbPath), before, "written before the 1h interval");
          const status = await d.stop("SIGTERM");
          assert.equal(status.code, 0, d.output);
          const a = (await readDb(dbPath)).entries.get(`default ${A}`);
          assert.equal(a?.stop, Number(m[1]), "the stop seen last is written on exit");
          assertWithin(a?.start, t0, t1, "start of c-a2");
          assertWithin(a?.stop, t0, t1, "stop of c-a2");
        },
      );
    });
  },
});

Deno.test({
  name: "record-image-starts reconnects with backoff when containerd restarts, then records again",
  async fn() {
    await session(async (s) => {
      const { c, dbPath } = s;
      const OLD = img("rec-old");
      const NEW = img("rec-new");
      await c.importImage("default", OLD, "rec-old");
      const d = s.start();
      await ready(s, d);

      await c.stopDaemon();
      await d.waitFor(
        "stderr",
        /^ERROR ctr event ended with code \d+.*; reconnecting in 1s \(attempt 1\)$/m,
      );
      // With containerd down the next attempt fails too (ctr waits 10 s to dial): backoff doubles.
      await d.waitFor("stderr", /^ERROR .*; reconnecting in 2s \(attempt 2\)$/m, 30_000);
      await c.startDaemon();
      // Most likely started while the daemon still waits to reconnect: its image then comes
      // from the resync (`ctr container ls`), not from a /containers/create event, and its
      // start from the catch-up after the reconnect (a task of a container it did not know).
      const tAway = Date.now();
      await c.run("default", OLD, "c-away");

      await c.importImage("default", NEW, "rec-new");
      await ready(s, d, { timeoutMs: 60_000 });
      const t0 = Date.now();
      await c.runToExit("default", NEW, "c-new");
      const t1 = Date.now();
      await killTask(c, "default", "c-away");
      const t2 = Date.now();
      const db = await waitDb(
        dbPath,
        (e) => e.get(`default ${NEW}`)?.stop != null && e.get(`default ${OLD}`)?.stop != null,
        5000,
      );
      const n = db.entries.get(`default ${NEW}`)!;
      assertWithin(n.start, t0, t1, "start of c-new");
      assertWithin(n.stop, t0, t1, "stop of c-new");
      assertWithin(db.entries.get(`default ${OLD}`)?.stop, t1, t2, "stop of c-away");
      // Its start: by its event, or by the catch-up once the recorder was back (before c-new).
      assertWithin(db.entries.get(`default ${OLD}`)?.start, tAway, t0, "start of c-away");
      assert.match(d.stdout, new RegExp(`^T \\d+ default ${escape(OLD)}$`, "m"));
      assert.match(d.stdout, new RegExp(`^T \\d+ default ${escape(NEW)}$`, "m"));
      assert.match(d.stdout, new RegExp(`^t \\d+ default ${escape(OLD)}$`, "m"));
      assert.ok(!d.exited, "still running");

      const status = await d.stop("SIGTERM");
      assert.equal(status.code, 0, d.output);
      // Every error line is about the outage; nothing about containers or unparsable events.
      for (const line of d.stderr.trimEnd().split("\n")) {
        assert.match(line, /; reconnecting in \d+s \(attempt \d+\)$/);
      }
    });
  },
});

Deno.test({
  name: "record-image-starts ends promptly on SIGTERM while containerd is down, after a write",
  async fn() {
    await session(async (s) => {
      const { c, dbPath } = s;
      // A long interval: only the exit can write what the probe recorded.
      const d = s.start([], "1h");
      const since = Math.floor(Date.now() / 1000) - SLACK;
      await ready(s, d);
      await c.stopDaemon();
      await d.waitFor("stderr", /; reconnecting in 1s \(attempt 1\)$/m);
      // The next attempt is under way: ctr waits up to 10 s to dial the dead socket.
      await sleep(2000);
      // How fast it stops is the benchmark's to measure (scripts/bench/); here: that it does.
      const status = await d.stop("SIGTERM");
      assert.equal(status.code, 0, d.output);
      const probe = (await readDb(dbPath)).entries.get(`default ${PROBE}`);
      assert.ok((probe?.start ?? 0) >= since, `the probe's start was not written on exit`);
    });
  },
});

Deno.test({
  name: "record-image-starts killed with SIGKILL during an event storm leaves a complete DB",
  async fn() {
    await session(async (s) => {
      const { c, dbPath, stateDir } = s;
      const STORM = [0, 1, 2, 3, 4].map((i) => img(`storm-${i}`));
      const NEVER = img("never-used");
      for (const ref of STORM) await c.importImage("default", ref, ref);
      await c.importImage("default", NEVER, "never-used");
      let events = 0;

      /**
       * Creates and removes containers (every 4th one run to exit) until `stop.now`; notes in
       * `used` when each ref was first used. Workers 4 and 5 tag and untag images instead.
       */
      const storm = async (
        round: number,
        worker: number,
        stop: { now: boolean },
        used: Map<string, number>,
      ) => {
        for (let i = 0; !stop.now; i++) {
          const id = `s${round}-${worker}-${i}`;
          const ref = STORM[(i + worker) % STORM.length]!;
          if (worker >= 4) {
            await c.ctrOk(["-n", "default", "image", "tag", ref, `${ref}-${id}`]);
            await c.ctrOk(["-n", "default", "image", "rm", `${ref}-${id}`]);
            events += 2;
            continue;
          }
          if (i % 4 === 0) await c.runToExit("default", ref, id);
          else await c.create("default", ref, id);
          if (!used.has(ref)) used.set(ref, Date.now());
          await c.ctrOk(["-n", "default", "container", "rm", id]);
          events += i % 4 === 0 ? 10 : 4;
        }
      };

      for (const [round, killAfterMs] of [[0, 2500], [1, 3300], [2, 4100]] as const) {
        if (round === 1) {
          // What a crash in the middle of a write leaves behind must not stop a restart.
          await Deno.writeTextFile(`${dbPath}.tmp`, "1800000000 ---------- default half-wri");
        }
        const d = s.start();
        await ready(s, d);
        const stop = { now: false };
        const used = new Map<string, number>();
        const started = Date.now();
        const eventsBefore = events;
        const workers = [0, 1, 2, 3, 4, 5].map((w) => storm(round, w, stop, used));
        // Every version of the file the storm produced: a new inode and mtime per write.
        const versions = new Set<string>();
        // Kill after killAfterMs, but not before every ref was used more than a flush interval
        // (plus slack) ago, so that each must be in the DB, and not before the round made a
        // storm (on a loaded machine the same time makes fewer events).
        const due = () =>
          Date.now() - started >= killAfterMs && used.size === STORM.length &&
          events - eventsBefore > 110 &&
          Date.now() - Math.max(...used.values()) >= 2000;
        while (!due() && Date.now() - started < 30_000) {
          const st = await Deno.stat(dbPath).catch(() => undefined);
          if (st) versions.add(`${st.ino} ${st.mtime?.getTime()}`);
          await sleep(20);
        }
        d.kill("SIGKILL");
        const status = await d.done;
        const seconds = (Date.now() - started) / 1000;
        stop.now = true;
        await Promise.all(workers);
        assert.equal(status.signal, "SIGKILL", d.output);

        const db = await readDb(dbPath);
        assert.deepEqual(db.rejected, [], await Deno.readTextFile(dbPath));
        assert.equal(used.size, STORM.length, `round ${round}: the storm did not use every image`);
        for (const ref of STORM) {
          const u = db.entries.get(`default ${ref}`);
          assert.ok(
            u !== undefined && Math.max(u.start, u.stop ?? 0) >= Math.floor(started / 1000) - SLACK,
            `round ${round}: the use of ${ref} at ${used.get(ref)} is not in the DB: ${
              JSON.stringify(u)
            }`,
          );
        }
        assert.ok(
          versions.size >= 2 && versions.size <= Math.ceil(seconds) + 2,
          `round ${round}: ${versions.size} versions of the DB in ${seconds} s of storm`,
        );
        assert.doesNotMatch(d.stderr, /ERROR/);
      }
      assert.ok(events > 300, `only ${events} events in the storm`);

      // A restart after the last kill takes the lock and runs, and exits cleanly.
      const d = s.start();
      await ready(s, d);
      assert.equal((await d.stop("SIGTERM")).code, 0, d.output);
      assert.equal(d.stderr, "");
      const db = await readDb(dbPath);
      assert.deepEqual(db.rejected, []);
      assert.doesNotMatch(await Deno.readTextFile(dbPath), /half-wri/);

      // Nothing uses the images now; only the DB keeps the recorded ones from prune.
      const left = await c.ctrOk(["-n", "default", "container", "ls", "-q"]);
      assert.equal(left.trim(), "", "containers left");
      const r = await runCtre(
        ["prune", "--dry-run", "--min-age", "0", "--double-check", "0"],
        { address: c.address, stateDir },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(listed(r.stdout), [`default ${NEVER}`], r.stdout);
    });
  },
});

Deno.test({
  name: "record-image-starts refuses to run twice on one state dir, naming the lock",
  async fn() {
    await session(async (s) => {
      const { stateDir } = s;
      const first = s.start();
      await ready(s, first);

      const second = s.start();
      const t0 = Date.now();
      const status = await Promise.race([second.done, sleep(10_000).then(() => undefined)]);
      const ms = Date.now() - t0;
      assert.ok(status !== undefined, `the second one still runs after ${ms} ms\n${second.output}`);
      assert.notEqual(status.code, 0);
      assert.equal(second.stdout, "");
      const lines = second.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, second.stderr);
      assert.match(
        lines[0]!,
        new RegExp(
          `^ctre: Another ctre record-image-starts is running on ${escape(stateDir)} ` +
            `\\(pid ${first.pid} since [^,]+, lock ${
              escape(join(stateDir, "record-image-starts.lock"))
            }\\)$`,
        ),
      );

      // The first one goes on recording.
      assert.ok(!first.exited, "the first one was stopped");
      await ready(s, first);
      assert.equal((await first.stop("SIGTERM")).code, 0, first.output);

      // Once it is gone, the lock is free.
      const next = s.start();
      await ready(s, next);
      assert.equal((await next.stop("SIGTERM")).code, 0, next.output);
    });
  },
});

Deno.test({
  name: "record-image-starts moves corrupt DB lines to image_starts.rejected and keeps the rest",
  async fn() {
    await session(async (s) => {
      const { c, dbPath, stateDir } = s;
      const A = img("rec-a");
      const B = img("rec-b");
      await c.importImage("default", A, "rec-a");
      const now = Math.floor(Date.now() / 1000);
      const good = [
        `${now - 3600} ---------- default ${A}`,
        `${now - 7200} ${now - 7100} other ${B}`,
      ];
      const corrupt = ["this is not a db line at all", `12x4 ---------- default ${img("bad")}`];
      const expired = `${now - 20 * DAY} ${now - 20 * DAY + 60} default ${img("old")}`;
      await Deno.writeTextFile(
        dbPath,
        [good[0], corrupt[0], expired, good[1], corrupt[1]].join("\n") + "\n",
      );
      const rejectedPath = join(stateDir, "image_starts.rejected");

      const d = s.start(["--quiet"]);
      await d.waitFor(
        "stderr",
        new RegExp(`^ERROR 2 corrupt lines of image_starts moved to ${escape(rejectedPath)}$`, "m"),
      );
      const rejected = await Deno.readTextFile(rejectedPath);
      assert.match(rejected, /^# \S+ line 2: .*\nthis is not a db line at all\n/m);
      assert.match(rejected, new RegExp(`^# \\S+ line 5: .*\\n${escape(corrupt[1]!)}\\n`, "m"));
      // The DB is rewritten at once: good lines kept, corrupt ones gone, the expired one dropped.
      const db = await waitDb(dbPath, (e) => e.size === 2, 3000);
      assert.equal(await Deno.readTextFile(dbPath), `${good[0]}\n${good[1]}\n`);
      assert.deepEqual(db.rejected, []);

      // It records on top of what was kept.
      await ready(s, d, { quiet: true });
      const t0 = Date.now();
      await c.runToExit("default", A, "c-a");
      const t1 = Date.now();
      const after = await waitDb(dbPath, (e) => e.get(`default ${A}`)?.stop != null, 5000);
      assertWithin(after.entries.get(`default ${A}`)?.start, t0, t1, "start of c-a");
      assert.deepEqual(after.entries.get(`other ${B}`), { start: now - 7200, stop: now - 7100 });
      assert.equal((await d.stop("SIGTERM")).code, 0, d.output);
      assert.equal(d.stdout, "", "--quiet prints nothing on stdout");
      assert.equal(d.stderr.trimEnd().split("\n").length, 1, d.stderr);

      // A restart finds nothing corrupt any more and reports nothing.
      const again = s.start(["--quiet"]);
      await ready(s, again, { quiet: true });
      assert.equal((await again.stop("SIGTERM")).code, 0, again.output);
      assert.equal(again.stderr, "");
      assert.equal(await Deno.readTextFile(rejectedPath), rejected);
    });
  },
});
