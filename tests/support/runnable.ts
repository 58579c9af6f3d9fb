/**
 * After a forced prune: every image that is still there must still start. A kept image whose
 * layers content prune deleted fails here with containerd's `failed to extract layer …: content
 * digest …: not found`.
 *
 * @module
 */
import type { TestContainerd } from "./containerd.ts";

let runs = 0;

/**
 * Runs a container (`ctr run --rm … true`) from one ref of every image of every namespace (or of
 * `namespaces`), and throws listing each image that cannot start. Returns the refs it ran.
 * Running an image that was not unpacked unpacks it: call this after the prune under test.
 */
export async function assertKeptImagesRun(
  c: TestContainerd,
  namespaces?: string[],
): Promise<string[]> {
  const nsList = namespaces ??
    (await c.ctrOk(["namespace", "ls", "-q"])).split("\n").filter((l) => l !== "");
  const failures: string[] = [];
  const ran: string[] = [];
  for (const ns of nsList) {
    // One ref per digest: refs of one digest are the same image.
    const rows = (await c.ctrOk(["-n", ns, "image", "ls"])).split("\n").slice(1)
      .map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 3);
    const byDigest = new Map<string, string>();
    for (const [ref, , digest] of rows) {
      if (ref && digest && !ref.startsWith("sha256:") && !byDigest.has(digest)) {
        byDigest.set(digest, ref);
      }
    }
    for (const ref of byDigest.values()) {
      try {
        await c.runOnce(ns, ref, `ctre-runnable-${++runs}`);
        ran.push(`${ns} ${ref}`);
      } catch (e) {
        failures.push(`${ns} ${ref}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
  if (failures.length > 0) {
    throw new Error(`Kept images that no longer start:\n${failures.join("\n")}`);
  }
  // A listing it could not read would otherwise pass as "every image runs".
  if (ran.length === 0) {
    throw new Error(`No image to run in ${nsList.join(", ") || "any namespace"}: nothing proved`);
  }
  return ran;
}
