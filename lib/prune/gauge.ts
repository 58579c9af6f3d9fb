/**
 * What a disk-pressure budget measures on the node: the content store's size through ctr, or the
 * free space of the filesystem holding containerd's root (statfs).
 *
 * @module
 */
import type { Containerd } from "../ctr/gateway.ts";
import { formatBytes } from "../core/units.ts";
import { measureStore } from "../node/inventory.ts";
import type { Budget } from "../policy/budget.ts";

/** What a budget measures: how many bytes must still go (≤ 0: the target is met). */
export interface Gauge {
  /** Bytes over the target now. */
  over(): Promise<number>;
  /** The target, for messages: `content store ≤ 20.0 GiB`. */
  readonly target: string;
  /**
   * Whether the estimates (lib/policy/disk.ts) predict what a removal frees. True for content
   * and snapshots; false for free space, which other files share: there the first batch is one
   * image, to learn the ratio.
   */
  readonly sizesPredict: boolean;
}

/**
 * What containerd holds: the content store (`ctr content ls` of every namespace, each digest
 * once) plus the snapshots (`ctr snapshot usage -b`), the unpacked copies and writable layers.
 */
export async function storeBytes(containerd: Containerd): Promise<number> {
  return measureStore(containerd, await containerd.namespaces());
}

/** Free space of the filesystem holding `root`. Needs --allow-sys=statfs and --allow-read=root. */
export async function freeSpace(root: string): Promise<{ free: number; total: number }> {
  let s;
  try {
    // Loaded only here: node:fs/promises adds ~35 ms of CPU to every start of ctre.
    const { statfs } = await import("node:fs/promises");
    s = await statfs(root);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) {
      throw new Error(
        `--min-free needs to measure the filesystem of "${root}": run ctre with ` +
          `--allow-sys=statfs --allow-read=${root} (a build with them: ` +
          `deno task compile --min-free-root ${root})`,
      );
    }
    throw new Error(
      `Cannot measure free space of "${root}": ${e instanceof Error ? e.message : e}`,
    );
  }
  return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
}

/** The gauge of a budget. */
export function gaugeOf(budget: Budget, containerd: Containerd): Gauge {
  if (budget.kind === "max-store-size") {
    return {
      target: `content store and snapshots at most ${formatBytes(budget.maxBytes)}`,
      sizesPredict: true,
      over: async () => (await storeBytes(containerd)) - budget.maxBytes,
    };
  }
  return {
    target: `at least ${budget.percent}% free on the filesystem of ${budget.root}`,
    sizesPredict: false,
    over: async () => {
      const { free, total } = await freeSpace(budget.root);
      return Math.ceil(total * budget.percent / 100 - free);
    },
  };
}
