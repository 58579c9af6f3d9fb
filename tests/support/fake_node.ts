/**
 * A containerd node in memory behind the scripted {@linkcode FakeCtr}: namespaces with images,
 * content (with containerd's GC labels), snapshots, containers and tasks, answering the ctr
 * commands prune runs in the shapes real ctr 1.6 prints (sizes in ctr's units: decimal `1MB` in
 * `content ls`, binary `1.0 MiB` in `image ls`), and changing state the way containerd does:
 * image rm starts a GC (finished before the next command; at once with --sync), a lease deleted
 * with --sync runs one; the GC follows the label references from images to content and from
 * content (`gc.ref.snapshot.*`) and containers to snapshots and their parents; `containers rm`
 * refuses a running container and removes a container's snapshot. Containers may have a
 * snapshot (keyed by their ID, parent the image's chain), so prune takes the lineage path. A
 * hook runs before each command, so a test can fail a step or change the node at an exact moment.
 *
 * It is a model, not containerd: the end-to-end tests check the same behaviour on the real one.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { CtrResult } from "../../lib/ctr/runner.ts";
import { fail, FakeCtr, ok } from "./fake_ctr.ts";
import { ctrGateway } from "../../lib/ctr/ctr_gateway.ts";
import type { Containerd } from "../../lib/ctr/gateway.ts";

export interface FakeBlob {
  size: number;
  /** ctr's AGE text, e.g. `4 weeks`. */
  age: string;
  labels: Map<string, string>;
}

export interface FakeContainer {
  image: string | null;
  labels: Record<string, string>;
  /** Task status, or undefined for a container without a task. */
  status?: string;
  /** Its snapshot's key (an active snapshot in the namespace), or undefined for none. */
  snapshotKey?: string;
}

export interface FakeNamespace {
  images: Map<string, { digest: string; labels: Map<string, string> }>;
  content: Map<string, FakeBlob>;
  snapshots: { key: string; parent: string | null; kind: string }[];
  containers: Map<string, FakeContainer>;
}

/** What `ctr snapshot usage -b` says every fake snapshot holds. */
export const SNAPSHOT_BYTES = 1000;

const T = 'time="2026-11-27T17:12:41.976313083Z"';

/** The n-th fake digest. */
export function fakeDigest(n: number, tag = 0): string {
  return `sha256:${tag.toString(16)}${n.toString(16).padStart(63, "0")}`;
}

function table(rows: string[][]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" ") + " \n").join("");
}

/** A size as `ctr content ls` prints it: decimal units, `%.4g`, no space (`1MB`, `1.234kB`). */
export function ctrDecimalSize(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${Number(n.toPrecision(4))}${units[i]}`;
}

/** A size as `ctr image ls` prints it: binary units, one decimal, a space (`1.0 MiB`). */
export function ctrBinarySize(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(1)} ${units[i]}`;
}

/**
 * The OCI chain ID of `diffIds` (what containerd keys committed snapshots by): the first diff
 * ID, then sha256 of "<parent chain> <diff id>" for each next one.
 */
export function ociChainId(diffIds: string[]): string {
  let chain = diffIds[0]!;
  for (const d of diffIds.slice(1)) {
    chain = `sha256:${createHash("sha256").update(`${chain} ${d}`).digest("hex")}`;
  }
  return chain;
}

function labelText(labels: Map<string, string>): string {
  return labels.size === 0 ? "-" : [...labels].map(([k, v]) => `${k}=${v}`).join(",");
}

export class FakeNode {
  readonly namespaces = new Map<string, FakeNamespace>();
  /** Runs before every ctr command: return a result to answer it instead (a fault). */
  hook: (args: string[]) => CtrResult | undefined = () => undefined;
  readonly ctr: FakeCtr;
  /** The real gateway over {@linkcode ctr}: prune talks to the node through it. */
  readonly containerd: Containerd;
  #next = 1;
  #leases = new Set<string>();
  /** An image rm's GC, not waited for: it runs before the next command. */
  #gcPending = false;
  /** What `ctr content get` prints for manifests and configs (layers are not readable). */
  #documents = new Map<string, string>();

  constructor() {
    this.ctr = new FakeCtr((args) => {
      if (this.#gcPending) this.gc();
      return this.hook([...args]) ?? this.#handle(args);
    });
    this.containerd = ctrGateway(this.ctr);
  }

  ns(name: string): FakeNamespace {
    let s = this.namespaces.get(name);
    if (!s) {
      s = { images: new Map(), content: new Map(), snapshots: [], containers: new Map() };
      this.namespaces.set(name, s);
    }
    return s;
  }

  /**
   * Adds an image: a manifest referencing a config and `layers` layer blobs (1 MB each), aged
   * `age`; unpacked (a committed snapshot, named on the config) unless `unpacked` is false.
   * Returns its digest.
   */
  addImage(
    ns: string,
    ref: string,
    opts: {
      age?: string;
      layers?: number;
      unpacked?: boolean;
      labels?: Record<string, string>;
      /** Layer blobs shared with another image, below its own (a common base). */
      base?: string[];
    } = {},
  ): string {
    const s = this.ns(ns);
    const age = opts.age ?? "4 weeks";
    const n = this.#next++;
    const own = Array.from({ length: opts.layers ?? 1 }, (_, i) => fakeDigest(n, 3 + i));
    const layers = [...opts.base ?? [], ...own];
    const config = fakeDigest(n, 2);
    const manifest = fakeDigest(n, 1);
    // Layers are uncompressed: each layer's diff ID is its digest.
    const chain = ociChainId(layers);
    for (const l of own) {
      s.content.set(l, {
        size: 1_000_000,
        age,
        labels: new Map([["containerd.io/uncompressed", l]]),
      });
    }
    s.content.set(config, {
      size: 500,
      age,
      labels: opts.unpacked === false
        ? new Map()
        : new Map([["containerd.io/gc.ref.snapshot.overlayfs", chain]]),
    });
    s.content.set(manifest, {
      size: 400,
      age,
      labels: new Map([
        ["containerd.io/gc.ref.content.config", config],
        ...layers.map((l, i): [string, string] => [`containerd.io/gc.ref.content.l.${i}`, l]),
      ]),
    });
    if (opts.unpacked !== false) {
      // One committed snapshot per layer prefix, keyed by its chain ID, as unpacking makes them.
      let parent: string | null = null;
      for (let i = 1; i <= layers.length; i++) {
        const key = ociChainId(layers.slice(0, i));
        if (!s.snapshots.some((x) => x.key === key)) {
          s.snapshots.push({ key, parent, kind: "Committed" });
        }
        parent = key;
      }
    }
    this.#documents.set(
      manifest,
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: {
          mediaType: "application/vnd.oci.image.config.v1+json",
          digest: config,
          size: 500,
        },
        layers: layers.map((l) => ({
          mediaType: "application/vnd.oci.image.layer.v1.tar",
          digest: l,
          size: 1_000_000,
        })),
      }),
    );
    this.#documents.set(
      config,
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        rootfs: { type: "layers", diff_ids: layers },
      }),
    );
    s.images.set(ref, { digest: manifest, labels: new Map(Object.entries(opts.labels ?? {})) });
    return manifest;
  }

  /** Points `ref` at `digest` (a tag, or a re-point by a pull). */
  tag(ns: string, ref: string, digest: string): void {
    this.ns(ns).images.set(ref, { digest, labels: new Map() });
  }

  /** The layer blobs of image `digest` (from its manifest's labels), in order. */
  layersOf(ns: string, digest: string): string[] {
    const labels = this.ns(ns).content.get(digest)?.labels ?? new Map<string, string>();
    return [...labels].filter(([k]) => k.startsWith("containerd.io/gc.ref.content.l."))
      .sort(([a], [b]) => Number(a.split(".").at(-1)) - Number(b.split(".").at(-1)))
      .map(([, v]) => v);
  }

  /** The chain ID (committed snapshot key) image `digest` is unpacked to, or null. */
  chainOf(ns: string, digest: string): string | null {
    const s = this.ns(ns);
    const config = s.content.get(digest)?.labels.get("containerd.io/gc.ref.content.config");
    const chain = config === undefined
      ? undefined
      : s.content.get(config)?.labels.get("containerd.io/gc.ref.snapshot.overlayfs");
    return chain ?? null;
  }

  /**
   * Adds a container. `opts.snapshotOf`: the digest whose chain its active snapshot (keyed by
   * its ID) sits on, as `ctr run` makes it; `opts.labels` replace the default pod label.
   */
  addContainer(
    ns: string,
    id: string,
    image: string | null,
    status?: string,
    opts: { snapshotOf?: string; labels?: Record<string, string> } = {},
  ): void {
    let snapshotKey: string | undefined;
    if (opts.snapshotOf !== undefined) {
      const chain = this.chainOf(ns, opts.snapshotOf);
      if (chain === null) throw new Error(`${opts.snapshotOf} is not unpacked`);
      this.ns(ns).snapshots.push({ key: id, parent: chain, kind: "Active" });
      snapshotKey = id;
    }
    this.ns(ns).containers.set(id, {
      image,
      labels: opts.labels ?? { "io.kubernetes.pod.name": id },
      ...(status === undefined ? {} : { status }),
      ...(snapshotKey === undefined ? {} : { snapshotKey }),
    });
  }

  /** The refs of `ns`, sorted. */
  refs(ns: string): string[] {
    return [...this.ns(ns).images.keys()].sort();
  }

  /** Whether blob `digest` is in the content store of `ns`. */
  has(ns: string, digest: string): boolean {
    return this.ns(ns).content.has(digest);
  }

  /**
   * Sum of blob sizes over namespaces, each digest once, plus every snapshot's usage
   * ({@linkcode SNAPSHOT_BYTES} each): what --max-store-size measures.
   */
  storeBytes(): number {
    const seen = new Map<string, number>();
    let snapshots = 0;
    for (const s of this.namespaces.values()) {
      for (const [d, b] of s.content) seen.set(d, b.size);
      snapshots += s.snapshots.length * SNAPSHOT_BYTES;
    }
    return [...seen.values()].reduce((a, b) => a + b, 0) + snapshots;
  }

  /**
   * containerd's GC, per namespace: content no image reaches through gc.ref.content labels goes;
   * then snapshots that no live blob (`gc.ref.snapshot.*`) nor container holds, nor any kept
   * snapshot has as its parent.
   */
  gc(): void {
    this.#gcPending = false;
    for (const s of this.namespaces.values()) {
      const live = new Set<string>();
      const todo = [...s.images.values()].map((i) => i.digest);
      while (todo.length) {
        const d = todo.pop()!;
        if (live.has(d)) continue;
        live.add(d);
        for (const [k, v] of s.content.get(d)?.labels ?? []) {
          if (k.startsWith("containerd.io/gc.ref.content.")) todo.push(v);
        }
      }
      for (const d of [...s.content.keys()]) if (!live.has(d)) s.content.delete(d);
      // Snapshots: one stays while a live config names it, a container has it, or it is active
      // (a lease may hold it), and so do its parents.
      const held = new Set<string>();
      for (const b of s.content.values()) {
        for (const [k, v] of b.labels) {
          if (k.startsWith("containerd.io/gc.ref.snapshot.")) held.add(v);
        }
      }
      for (const c of s.containers.values()) if (c.snapshotKey) held.add(c.snapshotKey);
      for (const x of s.snapshots) if (x.kind !== "Committed") held.add(x.key);
      const byKey = new Map(s.snapshots.map((x) => [x.key, x]));
      for (const key of [...held]) {
        for (let p = byKey.get(key)?.parent; p && !held.has(p); p = byKey.get(p)?.parent) {
          held.add(p);
        }
      }
      s.snapshots = s.snapshots.filter((x) => held.has(x.key));
    }
  }

  #imageSize(s: FakeNamespace, digest: string): number {
    let size = 0;
    const todo = [digest];
    const seen = new Set<string>();
    while (todo.length) {
      const d = todo.pop()!;
      if (seen.has(d)) continue;
      seen.add(d);
      const b = s.content.get(d);
      if (!b) continue;
      size += b.size;
      for (const [k, v] of b.labels) {
        if (k.startsWith("containerd.io/gc.ref.content.")) todo.push(v);
      }
    }
    return size;
  }

  /** What the node answers to `ctr <args>`, without the hook (for a hook that alters it). */
  answer(args: string[]): CtrResult {
    return this.#handle(args);
  }

  #handle(all: string[]): CtrResult {
    let args = all;
    let name = "default";
    if (args[0] === "-n") {
      name = args[1]!;
      args = args.slice(2);
    }
    // `snapshot --snapshotter overlayfs ls` (lineage names the snapshotter) is `snapshot ls`.
    if (args[0] === "snapshot" && args[1] === "--snapshotter" && args[2] === "overlayfs") {
      args = ["snapshot", ...args.slice(3)];
    }
    const cmd = args.slice(0, 2).join(" ");
    const rest = args.slice(2);
    const s = this.ns(name);
    switch (cmd) {
      case "namespace ls":
        return ok([...this.namespaces.keys()].sort().map((n) => `${n}\n`).join(""));
      case "content ls":
        if (rest[0] === "-q") return ok([...s.content.keys()].map((d) => `${d}\n`).join(""));
        return ok(
          "DIGEST\tSIZE\tAGE\tLABELS\n" +
            [...s.content].map(([d, b]) =>
              `${d}\t${ctrDecimalSize(b.size)}\t${b.age}\t${labelText(b.labels)}\n`
            ).join(""),
        );
      case "image ls": {
        const names = rest.map((f) => {
          const v = f.replace(/^name==/, "");
          return v.startsWith('"') ? JSON.parse(v) as string : v;
        });
        const rows = [...s.images].filter(([ref]) => names.length === 0 || names.includes(ref))
          .sort(([a], [b]) => a < b ? -1 : 1);
        return ok(table([
          ["REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS", "LABELS"],
          ...rows.map(([ref, i]) => [
            ref,
            "application/vnd.oci.image.manifest.v1+json",
            i.digest,
            ctrBinarySize(this.#imageSize(s, i.digest)),
            "linux/amd64",
            labelText(i.labels),
          ]),
        ]));
      }
      case "image rm": {
        const refs = rest.filter((r) => r !== "--sync");
        const out: string[] = [];
        const err: string[] = [];
        for (const ref of refs) {
          if (s.images.delete(ref)) out.push(`${ref}\n`);
          else err.push(`${T} level=warning msg="${ref}: image not found"\n`);
        }
        if (rest.includes("--sync")) this.gc();
        else this.#gcPending = true;
        return { code: 0, stdout: out.join(""), stderr: err.join("") };
      }
      case "image label": {
        const image = s.images.get(rest[0]!);
        if (!image) return fail(`ctr: image "${rest[0]}": not found\n`);
        for (const kv of rest.slice(1)) {
          const [k, v] = [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)];
          if (v === "") image.labels.delete(k);
          else image.labels.set(k, v);
        }
        return ok(`${rest[0]}\n`);
      }
      case "container ls": {
        // `labels."KEY"`: only containers that have that label.
        const key = rest.map((f) => /^labels\."(.*)"$/.exec(f)?.[1]).find((k) => k !== undefined);
        return ok(table([
          ["CONTAINER", "IMAGE", "RUNTIME"],
          ...[...s.containers].filter(([, c]) => key === undefined || key in c.labels)
            .map(([id, c]) => [id, c.image ?? "-", "io.containerd.runc.v2"]),
        ]));
      }
      case "task ls":
        return ok(table([
          ["TASK", "PID", "STATUS"],
          ...[...s.containers].filter(([, c]) => c.status !== undefined)
            .map(([id, c]) => [id, "100", c.status!]),
        ]));
      case "containers info": {
        const c = s.containers.get(rest[0]!);
        if (!c) return fail(`ctr: container "${rest[0]}" in namespace "${name}": not found\n`);
        return ok(JSON.stringify({
          ID: rest[0],
          Labels: c.labels,
          Image: c.image ?? "",
          SnapshotKey: c.snapshotKey ?? "",
          Snapshotter: c.snapshotKey === undefined ? "" : "overlayfs",
          CreatedAt: "2026-01-01T00:00:00Z",
          UpdatedAt: "2026-01-01T00:00:00Z",
        }));
      }
      case "containers rm": {
        // As ctr 1.6 prints it (tests/testdata/ctr-1.6/container_rm_running.stderr).
        const errors: { id: string; text: string }[] = [];
        for (const id of rest) {
          const c = s.containers.get(id);
          if (!c) {
            errors.push({ id, text: `container "${id}" in namespace "${name}": not found` });
          } else if (c.status !== undefined && !["STOPPED", "CREATED"].includes(c.status)) {
            const status = `{${c.status.toLowerCase()} 0 0001-01-01 00:00:00 +0000 UTC}`;
            errors.push({ id, text: `cannot delete a non stopped container: ${status}` });
          } else {
            s.containers.delete(id);
            if (c.snapshotKey) s.snapshots = s.snapshots.filter((x) => x.key !== c.snapshotKey);
          }
        }
        if (errors.length === 0) return ok();
        const log = errors.map((e) =>
          `${T} level=error msg="failed to delete container \\"${e.id}\\"" error="${e.text}"\n`
        );
        return { code: 1, stdout: "", stderr: log.join("") + `ctr: ${errors[0]!.text}\n` };
      }
      case "snapshot usage":
        return ok(table([
          ["KEY", "SIZE", "INODES"],
          ...s.snapshots.map((x) => [x.key, String(SNAPSHOT_BYTES), "1"]),
        ]));
      case "snapshot ls":
        return ok(table([
          ["KEY", "PARENT", "KIND"],
          ...s.snapshots.map((x) => [x.key, x.parent ?? "", x.kind]),
        ]));
      case "content prune": {
        for (const b of s.content.values()) {
          for (const k of [...b.labels.keys()]) {
            if (k.startsWith("containerd.io/gc.ref.content.l.")) b.labels.delete(k);
          }
        }
        this.gc();
        return ok();
      }
      case "content get": {
        const text = s.content.has(rest[0]!) ? this.#documents.get(rest[0]!) : undefined;
        if (text === undefined) return fail(`ctr: content digest ${rest[0]}: not found\n`);
        return ok(text);
      }
      case "content label": {
        const b = s.content.get(rest[0]!);
        if (!b) return fail(`ctr: content digest ${rest[0]}: not found\n`);
        for (const kv of rest.slice(1)) {
          const [k, v] = [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)];
          if (v === "") b.labels.delete(k);
          else b.labels.set(k, v);
        }
        return ok(labelText(b.labels) + "\n");
      }
      case "leases ls":
        return ok(table([
          ["ID", "CREATED AT", "LABELS"],
          ...[...this.#leases].map((id) => [id, "2026-01-01T00:00:00Z", "-"]),
        ]));
      case "leases create": {
        const id = `lease-${this.#next++}`;
        this.#leases.add(id);
        return ok(`${id}\n`);
      }
      case "leases delete": {
        for (const id of rest.filter((a) => !a.startsWith("-"))) this.#leases.delete(id);
        if (rest.includes("--sync")) this.gc();
        return ok();
      }
    }
    return fail(`fake ctr: unknown command: ctr ${all.join(" ")}\n`);
  }
}
