/**
 * Where a prune run prints: human-readable lines (stdout, or stderr under --json), warnings once
 * each, errors, and the updating progress line of the long steps (on a terminal only), which any
 * other line erases first.
 *
 * @module
 */
import { type Io, println, type Writer } from "../core/io.ts";
import { ProgressLine } from "../core/progress.ts";
import type { Lines } from "./after_removal.ts";

/** The output of one prune run. */
export class RunOutput {
  readonly #warned = new Set<string>();
  /** Where human-readable lines go: stdout, or stderr under --json. */
  readonly #human: Writer;
  readonly #stderr: Writer;
  readonly progress: ProgressLine;

  constructor(io: Io, json: boolean) {
    this.#human = json ? io.stderr : io.stdout;
    this.#stderr = io.stderr;
    this.progress = new ProgressLine(io.stderr, io.stderrIsTerminal, io.now);
  }

  /** A human-readable line. */
  say(text: string): void {
    this.progress.clear();
    println(this.#human, text);
  }

  /** Many human-readable lines at once (the list of a plan). */
  sayAll(lines: string[]): void {
    this.progress.clear();
    this.#human.write(lines.map((l) => `${l}\n`).join(""));
  }

  /** `Warning: text` on stderr, once per text. */
  warn(text: string): void {
    this.progress.clear();
    if (!this.#warned.has(text)) println(this.#stderr, `Warning: ${text}`);
    this.#warned.add(text);
  }

  /** An error line on stderr. */
  error(text: string): void {
    this.progress.clear();
    println(this.#stderr, text);
  }

  /** Where the clean-up steps print. */
  get lines(): Lines {
    return {
      say: (t) => this.say(t),
      error: (t) => this.error(t),
      progress: (label, done, total) => this.progress.update(label, done, total),
    };
  }
}
