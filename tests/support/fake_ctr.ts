/**
 * A scripted stand-in for `ctr`: records every argument list it is given and answers from a
 * script, so unit tests run no process.
 *
 * @module
 */
import type { Ctr, CtrResult, CtrStream } from "../../lib/ctr/runner.ts";

/** Answers one `run`: a result, or a throw (e.g. a CtrError for a spawn failure). */
export type RunScript = (args: string[]) => CtrResult | Promise<CtrResult>;

/** What one `stream` yields: its stdout lines, then how it ended. */
export interface StreamScript {
  lines: string[];
  code?: number;
  stderr?: string;
}

/** A successful run printing `stdout`. */
export function ok(stdout = ""): CtrResult {
  return { code: 0, stdout, stderr: "" };
}

/** A failed run. */
export function fail(stderr: string, code = 1, stdout = ""): CtrResult {
  return { code, stdout, stderr };
}

export class FakeCtr implements Ctr {
  /** Every argument list given to `run`, in order. */
  readonly runs: string[][] = [];
  /** Every argument list given to `stream`, in order. */
  readonly streams: string[][] = [];
  /** How many times a stream was stopped. */
  stops = 0;

  constructor(
    readonly script: RunScript = () => ok(),
    readonly streamScript: (args: string[]) => StreamScript = () => ({ lines: [] }),
  ) {}

  /** Every argument list given to `run` or `stream`, in order of the calls. */
  get calls(): string[][] {
    return [...this.#order];
  }

  #order: string[][] = [];

  get spawned(): number {
    return this.#order.length;
  }

  async run(args: string[]): Promise<CtrResult> {
    const copy = [...args];
    this.runs.push(copy);
    this.#order.push(copy);
    return await this.script([...args]);
  }

  stream(args: string[]): CtrStream {
    const copy = [...args];
    this.streams.push(copy);
    this.#order.push(copy);
    const s = this.streamScript([...args]);
    const lines = [...s.lines];
    return {
      lines: (async function* () {
        for (const line of lines) {
          await Promise.resolve();
          yield line;
        }
      })(),
      done: Promise.resolve({ code: s.code ?? 0, stderr: s.stderr ?? "" }),
      stop: () => {
        this.stops++;
      },
    };
  }
}
