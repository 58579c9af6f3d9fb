/**
 * Error types that main.ts maps to exit codes. Anything else reaching main.ts is a bug and is
 * still printed as one line.
 *
 * @module
 */

/** A bad command line: exit 2 with a usage hint. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A file ctre reads (a keep file, say) that it must not run with: exit 1, one line. */
export class InputError extends Error {
  override name = "InputError";
}

/** Output of `ctr` that does not have the documented shape. */
export class ParseError extends Error {
  override name = "ParseError";
}

/** A `ctr` invocation that failed (non-zero exit, not found, not permitted). */
export class CtrError extends Error {
  override name = "CtrError";
  constructor(message: string, readonly code: number, readonly stderr: string) {
    super(message);
  }
}

/**
 * A `ctr` that ran and exited non-zero: its stderr says why (a container gone, containerd not
 * answering). A CtrError that is not one is a ctr that could not be started at all.
 */
export class CtrExitError extends CtrError {}

/** The last line of a ctr's stderr, as messages quote it. */
export function lastStderrLine(stderr: string): string {
  return stderr.trim().split("\n").at(-1) ?? "";
}

/** Another ctre of the same kind holds the state dir's lock. */
export class LockHeldError extends Error {
  override name = "LockHeldError";
}

/** The one-line text of any thrown value. */
export function errorText(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.replace(/\s*\n\s*/g, " ").trim();
}
