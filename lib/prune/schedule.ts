/**
 * `ctre prune --every D [--jitter J]`: one run, then a sleep of D ± J (uniformly random), repeat,
 * so a fleet started at once does not prune at once. A stop request (SIGTERM, SIGINT) while
 * sleeping ends the loop at once; during a run, the run finishes first (never mid-removal). A
 * failing run does not end the loop: its exit code goes to the metrics as in a single run, and
 * the next run may succeed (containerd back up, a lock released). Sleep, randomness, the clock
 * and the stop signal are injected, so the loop is tested without waiting.
 *
 * @module
 */
import { errorText } from "../core/errors.ts";
import { isoTime } from "../core/text.ts";

export interface Schedule {
  /** Seconds between the end of one run and the start of the next (before jitter). */
  every: number;
  /** Seconds: the sleep is every ± jitter, uniformly random. At most `every`. */
  jitter: number;
}

export interface ScheduleDeps {
  /** Resolves after `ms`, or as soon as `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  /** A number in [0, 1). */
  random(): number;
  /** Unix time in seconds. */
  now(): number;
  /** Where the line after each run goes (stderr: stdout may carry --json documents). */
  log(line: string): void;
}

/** The sleep after a run, in seconds: every ± jitter for a random in [0, 1). */
export function delaySeconds(s: Schedule, random: number): number {
  return Math.max(0, s.every + (2 * random - 1) * s.jitter);
}

/** "23h41m12s", "90s" → "1m30s", "0s". */
export function formatSeconds(total: number): string {
  let s = Math.round(total);
  const parts: string[] = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  if (s > 0 || parts.length === 0) parts.push(`${s}s`);
  return parts.join("");
}

/**
 * Runs `runOnce` until `stop` aborts: after each run a line with its exit code and the next
 * start. A run that throws counts as exit code 1 (its error is logged). Returns 0 once stopped:
 * stopping on request is the normal end of a repeating pruner; failed runs are in the metrics.
 */
export async function repeat(
  runOnce: () => Promise<number>,
  schedule: Schedule,
  deps: ScheduleDeps,
  stop: AbortSignal,
): Promise<number> {
  for (let n = 1; !stop.aborted; n++) {
    let code: number;
    try {
      code = await runOnce();
    } catch (e) {
      deps.log(`ctre: ${errorText(e)}`);
      code = 1;
    }
    if (stop.aborted) {
      deps.log(`ctre: run ${n} ended with exit code ${code}; stopping`);
      return 0;
    }
    const delay = delaySeconds(schedule, deps.random());
    deps.log(
      `ctre: run ${n} ended with exit code ${code}; next run in ${formatSeconds(delay)} ` +
        `(${isoTime(deps.now() + delay)})`,
    );
    await deps.sleep(delay * 1000, stop);
  }
  deps.log("ctre: stopped between runs");
  return 0;
}

/** The real sleep: a timer that an abort clears. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
