/**
 * One ctre of a kind per state dir: an exclusive flock on `<state-dir>/<name>.lock`, which
 * also says who holds it. The kernel drops the lock when the process dies, so a crash never
 * leaves a stale lock.
 *
 * @module
 */
import { join } from "node:path";
import { permissionHint } from "./usage_db.ts";

export class LockHeldError extends Error {
  override name = "LockHeldError";
}

export interface Lock {
  release(): void;
}

/** Takes `<stateDir>/<name>.lock` or throws LockHeldError saying who holds it. */
export async function acquireLock(stateDir: string, name: string): Promise<Lock> {
  const path = join(stateDir, `${name}.lock`);
  let file: Deno.FsFile;
  try {
    await Deno.mkdir(stateDir, { recursive: true });
    file = await Deno.open(path, { read: true, write: true, create: true });
  } catch (e) {
    throw permissionHint(e, path, "write");
  }
  if (!(await file.tryLock(true))) {
    const holder = (await Deno.readTextFile(path).catch(() => "")).trim() || "unknown process";
    file.close();
    throw new LockHeldError(
      `Another ctre ${name} is running on ${stateDir} (${holder}, lock ${path})`,
    );
  }
  // Overwrite, then cut: a reader never sees the file empty.
  const holder = new TextEncoder().encode(`pid ${Deno.pid} since ${new Date().toISOString()}\n`);
  await file.seek(0, Deno.SeekMode.Start);
  await file.write(holder);
  await file.truncate(holder.length);
  return {
    release() {
      try {
        file.close();
      } catch {
        // Already closed.
      }
    },
  };
}
