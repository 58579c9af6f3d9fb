/**
 * A typed fake of the containerd gateway (lib/ctr/gateway.ts), as kubelet's image GC tests use a
 * fake runtime: namespaces of typed rows (images, content, containers, tasks, snapshots, leases)
 * that the changes really change, every call recorded as `[method, ...args]`, a `fault` hook to
 * fail any call at an exact moment, and any method replaceable (`on`). No ctr text: the gateway's
 * own tests (tests/ctr_gateway_test.ts) check the ctr side against captured output.
 *
 * @module
 */
import { CtrExitError } from "../../lib/core/errors.ts";
import type {
  ContainerInfo,
  ContainerRow,
  ContentBlob,
  ImageRow,
  SnapshotRow,
  TaskRow,
} from "../../lib/core/containerd.ts";
import type { Containerd, EventStream, ImageRemoval } from "../../lib/ctr/gateway.ts";
import type { CtrEvent } from "../../lib/ctr/events.ts";
import type { ParseError } from "../../lib/core/errors.ts";

/** One namespace's state. */
export interface FakeNs {
  images: ImageRow[];
  content: ContentBlob[];
  containers: ContainerRow[];
  tasks: TaskRow[];
  /** Container info by ID (a container without one: `containerInfo` says it is gone). */
  infos: Map<string, ContainerInfo>;
  /** Labels a container listing filters on, by ID (default: those of its info). */
  labels: Map<string, Record<string, string>>;
  snapshots: SnapshotRow[];
  /** Bytes each snapshot holds on disk, by key (a snapshot not in it: 0), for `snapshotUsage`. */
  usage: Map<string, number>;
  leases: string[];
  /** Blob bytes by digest, for `getContent`. */
  blobs: Map<string, string>;
}

/** Removes the containers `ids` of `s` but the running ones; says why for those. */
function removeStopped(s: FakeNs, ids: string[]): string[] {
  const said: string[] = [];
  for (const id of ids) {
    if (s.tasks.some((t) => t.id === id && t.status === "RUNNING")) {
      said.push(`ctr: cannot delete a non stopped container ${id}`);
      continue;
    }
    s.containers = s.containers.filter((c) => c.id !== id);
    s.tasks = s.tasks.filter((t) => t.id !== id);
  }
  return said;
}

function emptyNs(): FakeNs {
  return {
    images: [],
    content: [],
    containers: [],
    tasks: [],
    infos: new Map(),
    labels: new Map(),
    snapshots: [],
    usage: new Map(),
    leases: [],
    blobs: new Map(),
  };
}

/** The CtrExitError ctr's exit would give: `stderr` is what a caller may quote. */
export function exitError(what: string, stderr: string, code = 1): CtrExitError {
  return new CtrExitError(`ctr ${what} exited with code ${code}: ${stderr.trim()}`, code, stderr);
}

/** What containerd knows of container `id`. */
export function containerInfo(
  id: string,
  labels: Record<string, string>,
  updatedAt = "2026-11-20T00:00:00Z",
  image = "x:1",
): ContainerInfo {
  return {
    id,
    image,
    labels,
    createdAt: "2026-11-01T00:00:00Z",
    updatedAt,
    snapshotKey: id,
    snapshotter: "overlayfs",
    criImageRef: null,
  };
}

/** An image row of `ref` → `digest`. */
export function imageRow(ref: string, digest: string, size = 1000): ImageRow {
  return {
    ref,
    digest,
    size,
    type: "application/vnd.oci.image.manifest.v1+json",
    platforms: "linux/amd64",
    labels: new Map(),
  };
}

export class FakeContainerd implements Containerd {
  readonly state = new Map<string, FakeNs>();
  /** Every call, in order: method name and arguments. */
  readonly calls: unknown[][] = [];
  /** Replacements of methods (a race, another answer): called instead of the model. */
  on: Partial<Containerd> = {};
  /** Runs before every call (after it is recorded): throw to fail that call. */
  fault: (method: keyof Containerd, args: unknown[]) => void = () => {};
  /** The event stream (default: none, ended at once). */
  events: () => EventStream = () => eventStream([]);
  /** A namespace's image event stream (default: none, ended at once). */
  imageEvents: (ns: string) => EventStream = () => eventStream([]);

  /** The state of namespace `name` (created empty on first use). */
  ns(name: string): FakeNs {
    const s = this.state.get(name) ?? emptyNs();
    this.state.set(name, s);
    return s;
  }

  /** Calls of `method`, their arguments. */
  callsOf(method: keyof Containerd): unknown[][] {
    return this.calls.filter((c) => c[0] === method).map((c) => c.slice(1));
  }

  async #call<T>(method: keyof Containerd, args: unknown[], model: () => T): Promise<T> {
    this.calls.push([method, ...args]);
    this.fault(method, args);
    const replaced = this.on[method] as ((...a: unknown[]) => Promise<T>) | undefined;
    return replaced ? await replaced(...args) : model();
  }

  namespaces = () => this.#call("namespaces", [], () => [...this.state.keys()].sort());
  listImages = (ns: string, refs?: string[]) =>
    this.#call(
      "listImages",
      refs ? [ns, refs] : [ns],
      () => this.ns(ns).images.filter((i) => refs === undefined || refs.includes(i.ref)),
    );
  listContent = (ns: string) => this.#call("listContent", [ns], () => [...this.ns(ns).content]);
  contentDigests = (ns: string) =>
    this.#call("contentDigests", [ns], () => this.ns(ns).content.map((b) => b.digest));
  listContainers = (ns: string, withLabel?: string) =>
    this.#call(
      "listContainers",
      withLabel ? [ns, withLabel] : [ns],
      () =>
        this.ns(ns).containers.filter((c) => {
          const s = this.ns(ns);
          const labels = s.labels.get(c.id) ?? s.infos.get(c.id)?.labels ?? {};
          return withLabel === undefined || withLabel in labels;
        }),
    );
  listTasks = (ns: string) => this.#call("listTasks", [ns], () => [...this.ns(ns).tasks]);
  containerInfo = (ns: string, id: string) =>
    this.#call("containerInfo", [ns, id], () => {
      const info = this.ns(ns).infos.get(id);
      if (info === undefined) {
        throw exitError(`-n ${ns} containers info ${id}`, `ctr: container "${id}": not found\n`);
      }
      return info;
    });
  listSnapshots = (ns: string, snapshotter?: string) =>
    this.#call(
      "listSnapshots",
      snapshotter ? [ns, snapshotter] : [ns],
      () => [...this.ns(ns).snapshots],
    );
  snapshotUsage = (ns: string, snapshotter?: string) =>
    this.#call("snapshotUsage", snapshotter ? [ns, snapshotter] : [ns], () => {
      const s = this.ns(ns);
      return new Map(s.snapshots.map((r) => [r.key, s.usage.get(r.key) ?? 0]));
    });
  listLeases = (ns: string) => this.#call("listLeases", [ns], () => [...this.ns(ns).leases]);
  getContent = (ns: string, digest: string) =>
    this.#call("getContent", [ns, digest], () => {
      const text = this.ns(ns).blobs.get(digest);
      if (text === undefined) throw exitError(`content get ${digest}`, "ctr: not found\n");
      return text;
    });

  removeImages = (ns: string, refs: string[], sync: boolean) =>
    this.#call("removeImages", [ns, refs, sync], (): ImageRemoval => {
      const s = this.ns(ns);
      const out: ImageRemoval = { removed: [], missing: [], failed: [] };
      for (const ref of refs) {
        const before = s.images.length;
        s.images = s.images.filter((i) => i.ref !== ref);
        (s.images.length < before ? out.removed : out.missing).push(ref);
      }
      return out;
    });
  removeContainers = (ns: string, ids: string[]) =>
    this.#call("removeContainers", [ns, ids], () => removeStopped(this.ns(ns), ids));
  clearContentLabels = (ns: string, digest: string, labels: string[]) =>
    this.#call("clearContentLabels", [ns, digest, labels], () => {
      const blob = this.ns(ns).content.find((b) => b.digest === digest);
      if (blob === undefined) throw exitError("content label", `ctr: ${digest}: not found\n`);
      for (const l of labels) blob.labels.delete(l);
    });
  labelImage = (ns: string, ref: string, key: string, value: string) =>
    this.#call("labelImage", [ns, ref, key, value], () => {
      const image = this.ns(ns).images.find((i) => i.ref === ref);
      if (image === undefined) throw exitError("image label", `ctr: image "${ref}": not found\n`);
      if (value === "") image.labels.delete(key);
      else image.labels.set(key, value);
    });
  createLease = (ns: string, expires: string) =>
    this.#call("createLease", [ns, expires], () => {
      const id = `lease-${this.calls.length}`;
      this.ns(ns).leases.push(id);
      return id;
    });
  deleteLease = (ns: string, id: string, sync: boolean) =>
    this.#call("deleteLease", [ns, id, sync], () => {
      this.ns(ns).leases = this.ns(ns).leases.filter((l) => l !== id);
    });
  clientVersion = () => this.#call("clientVersion", [], () => "ctr github.com/containerd 2.1.9");
  serverVersion = (other?: { address: string; connectTimeout: string }) =>
    this.#call("serverVersion", other ? [other] : [], () => "2.1.9");
}

/** An event stream that yields `items`, then ends as `end` says. */
export function eventStream(
  items: (CtrEvent | ParseError)[],
  end: { code: number; stderr: string } = { code: 0, stderr: "" },
): EventStream & { stopped: number } {
  const s = {
    stopped: 0,
    events: (async function* () {
      for (const item of items) {
        await Promise.resolve();
        yield item;
      }
    })(),
    done: Promise.resolve(end),
    stop() {
      s.stopped++;
    },
  };
  return s;
}
