/**
 * The two steps after images are removed, as the original does them: remove containers that
 * are not running, then `ctr content prune references` so unreferenced blobs go. Each failure
 * is reported and the rest goes on.
 *
 * @module
 */
import { type Ctr, ctrOk } from "./ctr.ts";
import { errorText } from "./errors.ts";
import {
  type ContainerInfo,
  parseContainerInfo,
  parseContainerLs,
  parseDigests,
  parseTaskLs,
} from "./listings.ts";

/** Task states in which a container is left alone. Only STOPPED (or no task) may go. */
const LIVE_STATES = new Set(["RUNNING", "PAUSED", "PAUSING", "CREATED", "UNKNOWN"]);
/** A container without a task this new may be about to start (kubelet creates, then starts). */
export const FRESH_CONTAINER_SECONDS = 300;
const INFO_CONCURRENCY = 4;

export interface ContainerLine {
  ns: string;
  id: string;
  podNamespace: string;
  pod: string;
  container: string;
  created: string;
  why?: string;
}

export interface ContainerCleanup {
  deleted: ContainerLine[];
  kept: ContainerLine[];
  /** Containers not looked at, with why (no labels, gone). */
  skipped: string[];
  errors: string[];
}

/** Maps `fn` over `items` with at most `limit` running at once, keeping order. */
export async function mapLimit<T, R>(
  items: T[],
  limit: number,
  fn: (t: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function describe(ns: string, info: ContainerInfo): ContainerLine {
  const l = info.labels;
  return {
    ns,
    id: info.id,
    podNamespace: l["io.kubernetes.pod.namespace"] ?? info.id,
    pod: l["io.kubernetes.pod.name"] ?? info.id,
    container: l["io.kubernetes.container.name"] ?? `[${l["io.cri-containerd.kind"] ?? ""}]`,
    created: info.createdAt,
  };
}

function byPod(a: ContainerLine & { updated: string }, b: ContainerLine & { updated: string }) {
  const ka = [a.podNamespace, a.pod, a.updated];
  const kb = [b.podNamespace, b.pod, b.updated];
  for (let i = 0; i < ka.length; i++) {
    if (ka[i]! < kb[i]!) return -1;
    if (ka[i]! > kb[i]!) return 1;
  }
  return 0;
}

/**
 * Removes the containers of `ns` whose task is stopped (or that have no task and are older
 * than FRESH_CONTAINER_SECONDS). Running, paused and created tasks are kept. Containers
 * without labels are skipped, as the original does.
 */
export async function cleanupContainers(
  ctr: Ctr,
  ns: string,
  now: number,
): Promise<ContainerCleanup> {
  const result: ContainerCleanup = { deleted: [], kept: [], skipped: [], errors: [] };
  const containers = parseContainerLs(await ctrOk(ctr, ["-n", ns, "container", "ls"]));
  if (containers.length === 0) return result;
  const tasks = new Map(
    parseTaskLs(await ctrOk(ctr, ["-n", ns, "task", "ls"])).map((t) => [t.id, t]),
  );
  const candidates: string[] = [];
  for (const c of containers) {
    const status = tasks.get(c.id)?.status;
    if (status !== undefined && LIVE_STATES.has(status)) {
      result.kept.push({
        ns,
        id: c.id,
        podNamespace: "",
        pod: "",
        container: "",
        created: "",
        why: status.toLowerCase(),
      });
    } else {
      candidates.push(c.id);
    }
  }
  const infos = await mapLimit(candidates, INFO_CONCURRENCY, async (id) => {
    const r = await ctr.run(["-n", ns, "containers", "info", id]);
    if (r.code !== 0) {
      result.skipped.push(`${ns} ${id}: gone (${r.stderr.trim().split("\n").at(-1) ?? ""})`);
      return null;
    }
    try {
      return parseContainerInfo(r.stdout);
    } catch (e) {
      result.errors.push(`Cannot inspect container ${ns} ${id}: ${errorText(e)}`);
      return null;
    }
  });
  const removable: (ContainerLine & { updated: string })[] = [];
  for (const info of infos) {
    if (info === null) continue;
    if (Object.keys(info.labels).length === 0) {
      result.skipped.push(`${ns} ${info.id}: no labels`);
      continue;
    }
    const line = { ...describe(ns, info), updated: info.updatedAt };
    const updated = Date.parse(info.updatedAt) / 1000;
    if (!tasks.has(info.id) && !(now - updated >= FRESH_CONTAINER_SECONDS)) {
      result.kept.push({ ...describe(ns, info), why: "created recently, may be about to start" });
      continue;
    }
    removable.push(line);
  }
  if (removable.length === 0) return result;
  removable.sort(byPod);
  const rm = await ctr.run(["-n", ns, "containers", "rm", ...removable.map((c) => c.id)]);
  const left = new Set(
    parseContainerLs(await ctrOk(ctr, ["-n", ns, "container", "ls"])).map((c) => c.id),
  );
  for (const { updated: _, ...c } of removable) {
    if (left.has(c.id)) {
      const why = rm.stderr.split("\n").find((l) => l.includes(c.id))?.trim();
      result.kept.push({ ...c, why: why ?? "ctr containers rm did not remove it" });
    } else {
      result.deleted.push(c);
    }
  }
  return result;
}

export interface ContentPrune {
  before: number;
  after: number;
  error?: string;
}

const TRANSIENT = /content digest .* not found|not found/i;

/**
 * `ctr content prune references` in `ns`, retried once on the transient "content digest …
 * not found" (ossobv/vcutil#37), with the number of blobs before and after.
 */
export async function pruneContent(ctr: Ctr, ns: string): Promise<ContentPrune> {
  const count = async () =>
    parseDigests(await ctrOk(ctr, ["-n", ns, "content", "ls", "-q"])).length;
  const before = await count();
  const args = ["-n", ns, "content", "prune", "references"];
  let error: string | undefined;
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      await ctrOk(ctr, args);
      error = undefined;
      break;
    } catch (e) {
      error = errorText(e);
      if (!TRANSIENT.test(error)) break;
    }
  }
  const after = await count();
  return error === undefined ? { before, after } : { before, after, error };
}
