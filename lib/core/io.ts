/**
 * The outside world of a command, injected: output streams, the terminal, stdin, the clock,
 * and the signal that stops a long-running command (as dax's `CommandContext` carries them).
 * main.ts builds the real one; tests pass a recording one.
 *
 * @module
 */

export interface Writer {
  write(text: string): void;
}

export interface Io {
  stdout: Writer;
  stderr: Writer;
  /** Whether stderr is a terminal (for the countdown). */
  stderrIsTerminal: boolean;
  /** One line from stdin without its newline, or null at EOF. */
  readLine(): Promise<string | null>;
  /** Unix time in seconds, with a fraction. */
  now(): number;
  sleep(ms: number): Promise<void>;
  /** Aborted to stop a long-running command (SIGTERM, SIGINT); none: it runs until done. */
  signal?: AbortSignal;
}

/** Writes `text` and a newline. */
export function println(w: Writer, text = ""): void {
  w.write(`${text}\n`);
}

/** A writer to anything with `writeSync` (stdout, stderr, an open file), writing every byte. */
export function streamWriter(stream: { writeSync(p: Uint8Array): number }): Writer {
  const encoder = new TextEncoder();
  return {
    write(text) {
      const bytes = encoder.encode(text);
      let done = 0;
      while (done < bytes.length) done += stream.writeSync(bytes.subarray(done));
    },
  };
}

async function readStdinLine(): Promise<string | null> {
  const buf = new Uint8Array(1024);
  const bytes: number[] = [];
  for (;;) {
    const n = await Deno.stdin.read(buf);
    if (n === null) return bytes.length ? new TextDecoder().decode(new Uint8Array(bytes)) : null;
    for (let i = 0; i < n; i++) {
      if (buf[i] === 10) return new TextDecoder().decode(new Uint8Array(bytes));
      bytes.push(buf[i]!);
    }
  }
}

/** The process's own stdio and clock. Needs no permissions. */
export function processIo(): Io {
  return {
    stdout: streamWriter(Deno.stdout),
    stderr: streamWriter(Deno.stderr),
    stderrIsTerminal: Deno.stderr.isTerminal(),
    readLine: readStdinLine,
    now: () => Date.now() / 1000,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
}
