/**
 * The size and free space of the filesystem holding containerd's root (statfs), for `ctre df`
 * and for what `ctre prune` freed. Needs --allow-sys=statfs and --allow-read=<root>, which the
 * default build does not hold: then the answer says so instead of a number.
 *
 * @module
 */

/** statfs of the filesystem holding `path`. */
export interface Filesystem {
  path: string;
  sizeBytes: number;
  /** Free for unprivileged users (`df`'s Available). */
  freeBytes: number;
}

/** The flags a build needs to measure the filesystem of `root`. */
export function statfsFlags(root: string): string {
  return `--allow-sys=statfs --allow-read=${root}`;
}

/** statfs of `root`'s filesystem, or why it cannot be measured (one line). */
export async function statFilesystem(root: string): Promise<Filesystem | { error: string }> {
  try {
    // Loaded only here: node:fs/promises adds ~35 ms of CPU to every start of ctre.
    const { statfs } = await import("node:fs/promises");
    const s = await statfs(root);
    return { path: root, sizeBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) {
      return {
        error: `measuring the filesystem of "${root}" needs ${statfsFlags(root)} ` +
          `(a build with them: deno task compile --min-free-root ${root})`,
      };
    }
    return {
      error: `cannot measure the filesystem of "${root}": ${e instanceof Error ? e.message : e}`,
    };
  }
}
