/**
 * The two steps after images are removed, as the original does them: remove containers that
 * are not running, then `ctr content prune references` so unreferenced blobs go. Each failure
 * is reported and the rest goes on.
 *
 * @module
 */
import { mapLimit } from "../core/concurrency.ts";
import { type Ctr, ctrOk } from "../ctr/runner.ts";
import { errorText } from "../core/errors.ts";
import {
  parseContainerInfo,
  parseContainerLs,
  parseDigests,
  parseTaskLs,
} from "../ctr/listings.ts";
import type { ContainerInfo } from "../core/containerd.ts";

/** Task states in which a container is left alone. Only STOPPED (or no task) may go. */
const LIVE_STATES = new Set(["RUNNING", "PAUSED", "PAUSING", "CREATED", "UNKNOWN"]);
/** A container without a task this new may be about to start (kubelet creates, then starts). */
export const FRESH_CONTAINER_SECONDS = 300;
const INFO_CONCURRENCY = 4;
/** The label that marks a Kubernetes container (its pod name). */
const POD_LABEL = "io.kubernetes.pod.name";
/** The label containerd's CRI plugin puts on its sandboxes and containers (kubelet's). */
const CRI_KIND_LABEL = "io.cri-containerd.kind";
/** Why a kubelet container is left alone (Kubernetes: external container GC confuses kubelet). */
const KUBELET_KEEP_WHY = "managed by kubelet";
/** At most this many `ctr containers rm` at once, each given at least RM_MIN_PER_PROCESS. */
const RM_CONCURRENCY = 4;
const RM_MIN_PER_PROCESS = 10;

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

/** A container known only from `ctr container ls`: printed by its id. */
function bare(ns: string, id: string): ContainerLine {
  return { ns, id, podNamespace: id, pod: id, container: "", created: "" };
}

type Removable = ContainerLine & { updated: string };

function byPod(a: Removable, b: Removable): number {
  const ka = [a.podNamespace, a.pod, a.updated];
  const kb = [b.podNamespace, b.pod, b.updated];
  for (let i = 0; i < ka.length; i++) {
    if (ka[i]! < kb[i]!) return -1;
    if (ka[i]! > kb[i]!) return 1;
  }
  return 0;
}

/** Options of {@linkcode cleanupContainers}. */
export interface CleanupOptions {
  /**
   * Also remove containers of containerd's CRI plugin (label `io.cri-containerd.kind`: kubelet's
   * sandboxes and containers). Off by default: they are kept "managed by kubelet".
   */
  kubelet?: boolean;
}

/**
 * Removes the containers of `ns` whose task is stopped, or that have no task and were last
 * updated more than FRESH_CONTAINER_SECONDS ago. Running, paused and created tasks are kept,
 * and so are containers without an image (dockerd's, which dockerd manages) and, unless
 * `opts.kubelet`, the CRI plugin's (kubelet's) sandboxes and containers, without inspecting them.
 *
 * `ctr containers info` runs only where its answer is needed: for Kubernetes containers (found
 * with one filtered `ctr container ls`), whose pod labels the output shows and whose order
 * follows pod namespace, pod and update time, and for containers without a task, whose update
 * time decides whether they may be about to start. Inspected containers without any label are
 * skipped, as the original does.
 */
export async function cleanupContainers(
  ctr: Ctr,
  ns: string,
  now: number,
  opts: CleanupOptions = {},
): Promise<ContainerCleanup> {
  const result: ContainerCleanup = { deleted: [], kept: [], skipped: [], errors: [] };
  const containers = parseContainerLs(await ctrOk(ctr, ["-n", ns, "container", "ls"]));
  if (containers.length === 0) return result;
  const [taskList, k8sList, criList] = await Promise.all([
    ctrOk(ctr, ["-n", ns, "task", "ls"]),
    ctrOk(ctr, ["-n", ns, "container", "ls", `labels."${POD_LABEL}"`]),
    opts.kubelet ? "" : ctrOk(ctr, ["-n", ns, "container", "ls", `labels."${CRI_KIND_LABEL}"`]),
  ]);
  const tasks = new Map(parseTaskLs(taskList).map((t) => [t.id, t]));
  const k8s = new Set(parseContainerLs(k8sList).map((c) => c.id));
  const cri = new Set(criList === "" ? [] : parseContainerLs(criList).map((c) => c.id));
  const removable: Removable[] = [];
  const inspect: string[] = [];
  for (const c of containers) {
    const status = tasks.get(c.id)?.status;
    if (cri.has(c.id)) {
      result.kept.push({ ...bare(ns, c.id), why: KUBELET_KEEP_WHY });
    } else if (status !== undefined && LIVE_STATES.has(status)) {
      result.kept.push({ ...bare(ns, c.id), why: status.toLowerCase() });
    } else if (c.image === null) {
      result.skipped.push(`${ns} ${c.id}: no image (managed by dockerd)`);
    } else if (k8s.has(c.id) || status === undefined) {
      inspect.push(c.id);
    } else {
      removable.push({ ...bare(ns, c.id), updated: "" });
    }
  }
  const infos = await mapLimit(inspect, INFO_CONCURRENCY, async (id) => {
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
  for (const info of infos) {
    if (info === null) continue;
    if (Object.keys(info.labels).length === 0) {
      result.skipped.push(`${ns} ${info.id}: no labels`);
      continue;
    }
    const updated = Date.parse(info.updatedAt) / 1000;
    if (!tasks.has(info.id) && !(now - updated >= FRESH_CONTAINER_SECONDS)) {
      result.kept.push({ ...describe(ns, info), why: "created recently, may be about to start" });
      continue;
    }
    removable.push({ ...describe(ns, info), updated: info.updatedAt });
  }
  if (removable.length === 0) return result;
  removable.sort(byPod);
  // `ctr containers rm` deletes one container after the other, each with its task and its
  // snapshot (~65 ms apiece, mostly waiting on the shim and runc): a few processes, each with a
  // contiguous slice of the sorted list, take about half the time of one.
  const ids = removable.map((c) => c.id);
  const parts = Math.min(RM_CONCURRENCY, Math.ceil(ids.length / RM_MIN_PER_PROCESS));
  const size = Math.ceil(ids.length / parts);
  const rms = await Promise.all(
    Array.from({ length: parts }, (_, k) => ids.slice(k * size, (k + 1) * size))
      .filter((slice) => slice.length > 0)
      .map((slice) => ctr.run(["-n", ns, "containers", "rm", ...slice])),
  );
  const stderr = rms.map((r) => r.stderr).join("\n");
  const left = new Set(
    parseContainerLs(await ctrOk(ctr, ["-n", ns, "container", "ls"])).map((c) => c.id),
  );
  for (const { updated: _, ...c } of removable) {
    if (left.has(c.id)) {
      const why = stderr.split("\n").find((l) => l.includes(c.id))?.trim();
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
