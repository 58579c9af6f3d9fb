/**
 * A recording {@linkcode Io} for unit tests: captures what is written to stdout and stderr,
 * answers readLine from a script, and has a clock the test sets and that sleep advances.
 *
 * @module
 */
import type { Io, Writer } from "../../lib/core/io.ts";

class Capture implements Writer {
  text = "";
  write(text: string): void {
    this.text += text;
  }
  /** The complete lines written so far. */
  get lines(): string[] {
    const all = this.text.split("\n");
    all.pop();
    return all;
  }
}

export class FakeIo implements Io {
  readonly stdout = new Capture();
  readonly stderr = new Capture();
  stderrIsTerminal: boolean;
  /** The stop signal a long-running command watches, when the test sets one. */
  signal?: AbortSignal;
  /** Unix seconds returned by now(). */
  time: number;
  /** Every sleep asked for, in milliseconds. */
  readonly sleeps: number[] = [];
  readonly #answers: (string | null)[];
  /** How many lines were read. */
  reads = 0;

  constructor(
    opts: { now?: number; answers?: (string | null)[]; stderrIsTerminal?: boolean } = {},
  ) {
    this.time = opts.now ?? 1_800_000_000;
    this.#answers = [...(opts.answers ?? [])];
    this.stderrIsTerminal = opts.stderrIsTerminal ?? false;
  }

  /** The next scripted answer; null (EOF) once they are used up. */
  readLine(): Promise<string | null> {
    this.reads++;
    return Promise.resolve(this.#answers.length ? this.#answers.shift() ?? null : null);
  }

  now(): number {
    return this.time;
  }

  /** Advances the clock by `ms` at once. */
  sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.time += ms / 1000;
    return Promise.resolve();
  }
}
