/**
 * One ctre of a kind per state dir: an exclusive flock on `<state-dir>/<name>.lock`, which
 * also says who holds it. The kernel drops the lock when the process dies, so a crash never
 * leaves a stale lock.
 *
 * @module
 */
import { join } from "node:path";
import { LockHeldError } from "../core/errors.ts";
import { permissionHint } from "./state_files.ts";

export interface Lock {
  release(): void;
}

async function openLock(stateDir: string, name: string): Promise<[Deno.FsFile, string]> {
  const path = join(stateDir, `${name}.lock`);
  try {
    await Deno.mkdir(stateDir, { recursive: true });
    // 0600: a user who could open a lock could also hold it and block ctre.
    return [await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 }), path];
  } catch (e) {
    throw permissionHint(e, path, "write");
  }
}

async function holderOf(path: string): Promise<string> {
  return (await Deno.readTextFile(path).catch(() => "")).trim() || "unknown process";
}

/**
 * Who holds `<stateDir>/<name>.lock` (its `pid … since …` line), or null when nobody does.
 * Probes by taking the lock for an instant.
 */
export async function lockHolder(stateDir: string, name: string): Promise<string | null> {
  const [file, path] = await openLock(stateDir, name);
  try {
    return (await file.tryLock(true)) ? null : await holderOf(path);
  } finally {
    file.close();
  }
}

/** Takes `<stateDir>/<name>.lock` or throws LockHeldError saying who holds it. */
export async function acquireLock(stateDir: string, name: string): Promise<Lock> {
  const [file, path] = await openLock(stateDir, name);
  if (!(await file.tryLock(true))) {
    const holder = await holderOf(path);
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
