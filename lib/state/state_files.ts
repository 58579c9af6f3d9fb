/**
 * Writing and reading ctre's state files: atomic replacement, and errors that say which Deno
 * permission is missing. Shared by the usage DB, pulls, pin memory, lock, metrics, keep and
 * status.
 *
 * @module
 */
import { dirname } from "node:path";

/**
 * Writes `text` to `path` so that a crash at any moment leaves the old or the new complete
 * file: temp file in the same dir, fsync, rename, fsync the dir. The file gets `mode` (0600
 * unless said otherwise) whatever the umask. Needs read and write access to the dir.
 */
export async function writeAtomic(path: string, text: string, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  const temp = `${path}.tmp`;
  try {
    await Deno.mkdir(dir, { recursive: true });
    const f = await Deno.open(temp, { write: true, create: true, truncate: true, mode });
    try {
      await f.write(new TextEncoder().encode(text));
      await f.sync();
    } finally {
      f.close();
    }
    // Whatever the umask: the usage DB stays private even in a traversable state dir (0711).
    await Deno.chmod(temp, mode);
    await Deno.rename(temp, path);
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch (e) {
    throw permissionHint(e, path, "write");
  }
}

/** An error that says which Deno permission is missing, or the original error. */
export function permissionHint(e: unknown, path: string, access: "read" | "write"): Error {
  if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
    const flag = e instanceof Deno.errors.NotCapable
      ? ` (this ctre may only ${access} under the state dir it was built for; ` +
        `it needs --allow-${access}=${dirname(path)})`
      : " (file system permission denied)";
    return new Error(`Cannot ${access} "${path}"${flag}`);
  }
  return new Error(`Cannot ${access} "${path}": ${e instanceof Error ? e.message : e}`);
}
