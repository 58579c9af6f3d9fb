/**
 * What the model-based tests of prune share between the in-memory node (tests/prune_model_test.ts)
 * and a real containerd (tests/e2e_model_test.ts): the state files of a scenario, and the check
 * of the node after prune against the reference model (random_node.ts).
 *
 * @module
 */
import { join } from "node:path";
import { DAY, refsAfterMoves, type Scenario, verdicts } from "./random_node.ts";

/** The usage DB and pulls file of `s`, written into `stateDir`. */
export async function writeState(s: Scenario, stateDir: string, now: number): Promise<void> {
  const starts = s.starts.map((u) => {
    const t = now - u.daysAgo * DAY;
    return `${t} ${t} ${u.ns} ${u.ref}\n`;
  });
  await Deno.writeTextFile(join(stateDir, "image_starts"), starts.join(""));
  const pulls = s.pulls.map((u) => `${now - u.daysAgo * DAY} ${u.ns} ${u.ref}\n`);
  await Deno.writeTextFile(join(stateDir, "image_pulls"), pulls.join(""));
}

/**
 * Checks the node after prune against the model: returns one line per broken invariant.
 * `refsNow(ns)` lists the refs left with their digests; `runs(ns, digest)` says whether an image
 * left can still start.
 */
export function brokenInvariants(
  s: Scenario,
  digests: Map<number, string>,
  after: Map<string, Map<string, string>>,
  runs: (ns: string, digest: string) => boolean,
): string[] {
  const broken: string[] = [];
  const before = refsAfterMoves(s);
  for (const [index, v] of verdicts(s)) {
    const im = s.images[index]!;
    const refs = before.get(index)!;
    const left = refs.filter((ref) => after.get(im.ns)?.get(ref) === digests.get(index));
    const what = `${im.ns} image ${index} (${refs.join(" ")})`;
    if (left.length > 0 && left.length < refs.length) {
      broken.push(`${what}: kept only ${left.join(" ")} of its refs`);
    }
    if (v.must === "stay" && left.length === 0) broken.push(`${what} removed, but ${v.why}`);
    if (v.must === "go" && left.length > 0) broken.push(`${what} kept, but old and unused`);
    if (left.length > 0 && !runs(im.ns, digests.get(index)!)) broken.push(`${what} cannot run`);
  }
  return broken;
}
