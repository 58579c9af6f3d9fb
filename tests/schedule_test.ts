/**
 * `prune --every/--jitter`: the loop with injected sleep, randomness and stop signal, and the
 * command-line rules. The real loop under signals, in a container, is in image_test.ts.
 */
import assert from "node:assert/strict";
import { parseCommand } from "../lib/cli/cli.ts";
import { UsageError } from "../lib/core/errors.ts";
import { delaySeconds, formatSeconds, repeat, type ScheduleDeps } from "../lib/prune/schedule.ts";

/** Deps that record every sleep and log line; sleeping runs `onSleep` (e.g. to abort). */
function fakeDeps(randoms: number[], onSleep: (n: number) => void) {
  const sleeps: number[] = [];
  const log: string[] = [];
  let r = 0;
  const deps: ScheduleDeps = {
    sleep: (ms, signal) => {
      sleeps.push(ms);
      onSleep(sleeps.length);
      assert.equal(typeof signal.aborted, "boolean");
      return Promise.resolve();
    },
    random: () => randoms[r++ % randoms.length]!,
    now: () => 1_800_000_000,
    log: (line) => log.push(line),
  };
  return { deps, sleeps, log };
}

Deno.test("repeat() runs, sleeps every ± jitter at random, and stops between runs at once", async () => {
  const stop = new AbortController();
  let runs = 0;
  // random 0 → every - jitter, 0.5 → every, 0.999… → almost every + jitter
  const { deps, sleeps, log } = fakeDeps([0, 0.5, 0.75], (n) => {
    if (n === 3) stop.abort(); // SIGTERM while sleeping after the third run
  });
  const code = await repeat(
    () => Promise.resolve(++runs % 2),
    {
      every: 3600,
      jitter: 600,
    },
    deps,
    stop.signal,
  );
  assert.equal(code, 0);
  assert.equal(runs, 3, "no run after the stop");
  assert.deepEqual(sleeps, [3000_000, 3600_000, 3900_000]);
  assert.match(log[0]!, /^ctre: run 1 ended with exit code 1; next run in 50m \(20\d\d-.*Z\)$/);
  assert.match(log[1]!, /^ctre: run 2 ended with exit code 0; next run in 1h /);
  assert.match(log[2]!, /^ctre: run 3 ended with exit code 1; next run in 1h5m /);
  assert.equal(log[3], "ctre: stopped between runs");
  assert.equal(log.length, 4);
});

Deno.test("repeat() lets a run that is going on finish, then stops without sleeping", async () => {
  const stop = new AbortController();
  let finished = 0;
  const { deps, sleeps, log } = fakeDeps([0.5], () => {});
  const code = await repeat(
    async () => {
      stop.abort(); // the signal arrives mid-run
      await new Promise((r) => setTimeout(r, 10));
      finished++;
      return 0;
    },
    { every: 60, jitter: 0 },
    deps,
    stop.signal,
  );
  assert.equal(code, 0);
  assert.equal(finished, 1, "the run completed");
  assert.deepEqual(sleeps, [], "no sleep after a stop during a run");
  assert.deepEqual(log, ["ctre: run 1 ended with exit code 0; stopping"]);
});

Deno.test("repeat() keeps going after a failing or throwing run", async () => {
  const stop = new AbortController();
  const results: (() => Promise<number>)[] = [
    () => Promise.reject(new Error("ctr: cannot connect to containerd")),
    () => Promise.resolve(1),
    () => Promise.resolve(0),
  ];
  let i = 0;
  const { deps, log } = fakeDeps([0.5], (n) => {
    if (n === 3) stop.abort();
  });
  const code = await repeat(() => results[i++]!(), { every: 10, jitter: 0 }, deps, stop.signal);
  assert.equal(code, 0);
  assert.equal(i, 3);
  assert.deepEqual(log.map((l) => l.replace(/ \(.*\)$/, "")), [
    "ctre: ctr: cannot connect to containerd",
    "ctre: run 1 ended with exit code 1; next run in 10s",
    "ctre: run 2 ended with exit code 1; next run in 10s",
    "ctre: run 3 ended with exit code 0; next run in 10s",
    "ctre: stopped between runs",
  ]);
});

Deno.test("repeat() with the stop already requested runs nothing", async () => {
  const stop = new AbortController();
  stop.abort();
  let runs = 0;
  const { deps, log } = fakeDeps([0.5], () => {});
  assert.equal(
    await repeat(() => Promise.resolve(++runs), { every: 1, jitter: 0 }, deps, stop.signal),
    0,
  );
  assert.equal(runs, 0);
  assert.deepEqual(log, ["ctre: stopped between runs"]);
});

Deno.test("delaySeconds() spreads uniformly over every ± jitter", () => {
  const s = { every: 86400, jitter: 7200 };
  assert.equal(delaySeconds(s, 0), 79200);
  assert.equal(delaySeconds(s, 0.5), 86400);
  assert.ok(delaySeconds(s, 0.999999) < 93600 && delaySeconds(s, 0.999999) > 93599);
  assert.equal(delaySeconds({ every: 5, jitter: 5 }, 0), 0);
});

Deno.test("formatSeconds() prints compact durations", () => {
  assert.equal(formatSeconds(0), "0s");
  assert.equal(formatSeconds(90), "1m30s");
  assert.equal(formatSeconds(86400 + 3600 + 1), "1d1h1s");
  assert.equal(formatSeconds(3000), "50m");
});

Deno.test("prune --every/--jitter: parsed in seconds; usage errors otherwise", async (t) => {
  const ok = parseCommand(["prune", "--force", "--every", "24h", "--jitter", "2h"]);
  assert.ok(ok.kind === "prune");
  assert.deepEqual(ok.schedule, { every: 86400, jitter: 7200 });
  const dry = parseCommand(["prune", "--dry-run", "--every", "90s"]);
  assert.ok(dry.kind === "prune");
  assert.deepEqual(dry.schedule, { every: 90, jitter: 0 });
  const once = parseCommand(["prune", "--force"]);
  assert.ok(once.kind === "prune");
  assert.equal(once.schedule, null);
  for (
    const [args, message] of [
      [["--every", "24h"], /--every needs --force or --dry-run/],
      [["--force", "--jitter", "2h"], /--jitter needs --every/],
      [["--force", "--every", "0"], /--every must be more than 0/],
      [["--force", "--every", "1h", "--jitter", "2h"], /--jitter must not be more than --every/],
      [["--force", "--every", "soon"], /every/],
      [["--force", "--every"], /needs a value/],
    ] as const
  ) {
    await t.step(args.join(" "), () => {
      assert.throws(() => parseCommand(["prune", ...args]), (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.match(e.message, message);
        return true;
      });
    });
  }
});
