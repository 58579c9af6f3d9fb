/**
 * Container clean-up after images are removed, as the original does it: remove the containers
 * that are not running (and not kubelet's or dockerd's). Each failure is reported and the rest
 * goes on.
 *
 * @module
 */
import { mapLimit } from "../core/concurrency.ts";
import type { Containerd } from "../ctr/gateway.ts";
import { CtrExitError, errorText, lastStderrLine, ParseError } from "../core/errors.ts";
import type { ContainerInfo, ContainerRow, TaskRow } from "../core/containerd.ts";

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

/** What the listings of `ns` say about its containers. */
interface Listed {
  containers: ContainerRow[];
  tasks: Map<string, TaskRow>;
  /** Kubernetes containers (with a pod label). */
  k8s: Set<string>;
  /** The CRI plugin's (kubelet's) containers; empty with `opts.kubelet`. */
  cri: Set<string>;
}

/** Lists the containers of `ns`; the tasks and labelled ones only when there are any. */
async function listContainers(
  containerd: Containerd,
  ns: string,
  opts: CleanupOptions,
): Promise<Listed | null> {
  const containers = await containerd.listContainers(ns);
  if (containers.length === 0) return null;
  const [tasks, k8s, cri] = await Promise.all([
    containerd.listTasks(ns),
    containerd.listContainers(ns, POD_LABEL),
    opts.kubelet ? [] : containerd.listContainers(ns, CRI_KIND_LABEL),
  ]);
  return {
    containers,
    tasks: new Map(tasks.map((t) => [t.id, t])),
    k8s: new Set(k8s.map((c) => c.id)),
    cri: new Set(cri.map((c) => c.id)),
  };
}

/** Which containers are kept or skipped on sight, which need inspecting, which may go. */
function triage(ns: string, listed: Listed, result: ContainerCleanup) {
  const removable: Removable[] = [];
  const inspect: string[] = [];
  for (const c of listed.containers) {
    const status = listed.tasks.get(c.id)?.status;
    if (listed.cri.has(c.id)) {
      result.kept.push({ ...bare(ns, c.id), why: KUBELET_KEEP_WHY });
    } else if (status !== undefined && LIVE_STATES.has(status)) {
      result.kept.push({ ...bare(ns, c.id), why: status.toLowerCase() });
    } else if (c.image === null) {
      result.skipped.push(`${ns} ${c.id}: no image (managed by dockerd)`);
    } else if (listed.k8s.has(c.id) || status === undefined) {
      inspect.push(c.id);
    } else {
      removable.push({ ...bare(ns, c.id), updated: "" });
    }
  }
  return { removable, inspect };
}

/**
 * Inspects containers `ids`: those gone meanwhile are skipped, unreadable ones are errors,
 * those without labels skipped, those without a task updated recently kept. Returns the rest.
 */
async function inspect(
  containerd: Containerd,
  ns: string,
  ids: string[],
  tasks: Map<string, TaskRow>,
  now: number,
  result: ContainerCleanup,
): Promise<Removable[]> {
  const infos = await mapLimit(ids, INFO_CONCURRENCY, async (id) => {
    try {
      return await containerd.containerInfo(ns, id);
    } catch (e) {
      if (e instanceof CtrExitError) {
        result.skipped.push(`${ns} ${id}: gone (${lastStderrLine(e.stderr)})`);
      } else if (e instanceof ParseError) {
        result.errors.push(`Cannot inspect container ${ns} ${id}: ${errorText(e)}`);
      } else {
        throw e;
      }
      return null;
    }
  });
  const removable: Removable[] = [];
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
  return removable;
}

/**
 * Removes `removable` in pod order, then lists again: those still there are kept with ctr's
 * reason. `ctr containers rm` deletes one container after the other, each with its task and its
 * snapshot (~65 ms apiece, mostly waiting on the shim and runc): a few processes, each with a
 * contiguous slice of the sorted list, take about half the time of one.
 */
async function removeAll(
  containerd: Containerd,
  ns: string,
  removable: Removable[],
  result: ContainerCleanup,
): Promise<void> {
  removable.sort(byPod);
  const ids = removable.map((c) => c.id);
  const parts = Math.min(RM_CONCURRENCY, Math.ceil(ids.length / RM_MIN_PER_PROCESS));
  const size = Math.ceil(ids.length / parts);
  const said = (await Promise.all(
    Array.from({ length: parts }, (_, k) => ids.slice(k * size, (k + 1) * size))
      .filter((slice) => slice.length > 0)
      .map((slice) => containerd.removeContainers(ns, slice)),
  )).flat();
  const left = new Set((await containerd.listContainers(ns)).map((c) => c.id));
  for (const { updated: _, ...c } of removable) {
    if (left.has(c.id)) {
      const why = said.find((l) => l.includes(c.id))?.trim();
      result.kept.push({ ...c, why: why ?? "ctr containers rm did not remove it" });
    } else {
      result.deleted.push(c);
    }
  }
}

/**
 * Removes the containers of `ns` whose task is stopped, or that have no task and were last
 * updated more than FRESH_CONTAINER_SECONDS ago. Running, paused and created tasks are kept,
 * and so are containers without an image (dockerd's, which dockerd manages) and, unless
 * `opts.kubelet`, the CRI plugin's (kubelet's) sandboxes and containers, without inspecting them.
 *
 * Containers are inspected only where the answer is needed: Kubernetes containers (found with
 * one filtered listing), whose pod labels the output shows and whose order follows pod
 * namespace, pod and update time, and containers without a task, whose update time decides
 * whether they may be about to start. Inspected containers without any label are skipped, as
 * the original does.
 */
export async function cleanupContainers(
  containerd: Containerd,
  ns: string,
  now: number,
  opts: CleanupOptions = {},
): Promise<ContainerCleanup> {
  const result: ContainerCleanup = { deleted: [], kept: [], skipped: [], errors: [] };
  const listed = await listContainers(containerd, ns, opts);
  if (listed === null) return result;
  const { removable, inspect: ids } = triage(ns, listed, result);
  removable.push(...await inspect(containerd, ns, ids, listed.tasks, now, result));
  if (removable.length > 0) await removeAll(containerd, ns, removable, result);
  return result;
}
