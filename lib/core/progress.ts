/**
 * One status line that updates in place on a terminal (`removing images 1,200/4,000`), for the
 * long steps of a prune. Where the output is not a terminal (journald, cron, a pipe) it writes
 * nothing: those logs stay one line per event. Any other line must `clear()` it first.
 *
 * @module
 */
import type { Writer } from "./io.ts";

/** Seconds between two redraws; the first and the last count are always drawn. */
const REDRAW_SECONDS = 0.1;

/** `1200` → `1,200`. */
export function groupDigits(n: number): string {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** The updating line; inert unless `terminal`. */
export class ProgressLine {
  #shown = false;
  #drawn = -Infinity;

  constructor(
    readonly out: Writer,
    readonly terminal: boolean,
    readonly now: () => number,
  ) {}

  /** Shows `label done/total`, at most every 0.1 s (but always the first and the last). */
  update(label: string, done: number, total: number): void {
    if (!this.terminal) return;
    const t = this.now();
    if (this.#shown && done < total && t - this.#drawn < REDRAW_SECONDS) return;
    this.#drawn = t;
    this.out.write(`\r\x1b[K${label} ${groupDigits(done)}/${groupDigits(total)}`);
    this.#shown = true;
  }

  /** Erases the line, if shown, so that the next line starts at the left margin. */
  clear(): void {
    if (!this.#shown) return;
    this.out.write("\r\x1b[K");
    this.#shown = false;
  }
}
