/**
 * Images → chain IDs, as pure functions: from `ctr content ls` labels (index → manifests →
 * config → `containerd.io/gc.ref.snapshot.<snapshotter>`), or computed from a config's
 * `rootfs.diff_ids`. lib/policy/lineage.ts matches them with containers' snapshots.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { ContentBlob } from "../core/containerd.ts";

const LABEL_CONFIG = "containerd.io/gc.ref.content.config";
const LABEL_MANIFEST = /^containerd\.io\/gc\.ref\.content\.m\./;
const LABEL_SNAPSHOT = /^containerd\.io\/gc\.ref\.snapshot\.(.+)$/;
const SNAPSHOT_PREFIX = "containerd.io/gc.ref.snapshot.";
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** The chain ID of an image's layers: one → diff_ids[0]; more → sha256(prev + " " + next). */
export function chainId(diffIds: readonly string[]): string {
  if (diffIds.length === 0) throw new Error("an image without layers has no chain ID");
  let chain = diffIds[0]!;
  for (const d of diffIds.slice(1)) {
    chain = "sha256:" + createHash("sha256").update(`${chain} ${d}`).digest("hex");
  }
  return chain;
}

/** The chain ID of a config blob's JSON (`rootfs.diff_ids`); throws on anything else. */
export function chainIdOfConfig(json: string): string {
  const ids = JSON.parse(json)?.rootfs?.diff_ids;
  if (!Array.isArray(ids) || ids.length === 0 || !ids.every((d) => DIGEST.test(String(d)))) {
    throw new Error("config has no rootfs.diff_ids");
  }
  return chainId(ids as string[]);
}

/** The snapshotters named by `containerd.io/gc.ref.snapshot.<snapshotter>` labels. */
export function snapshottersOf(content: Map<string, ContentBlob>): string[] {
  const names = new Set<string>();
  for (const blob of content.values()) {
    for (const key of blob.labels.keys()) {
      if (!key.startsWith(SNAPSHOT_PREFIX)) continue; // most keys: no regex run
      const m = LABEL_SNAPSHOT.exec(key);
      if (m?.[1]) names.add(m[1]);
    }
  }
  return [...names].sort();
}

/** What content labels say of each image target's chain IDs. */
export interface LabelChains {
  /** Image target digest → chain IDs (of each platform unpacked here). */
  chains: Map<string, Set<string>>;
  /** Image target digest → config digests whose chain no label gives (blob present). */
  needConfig: Map<string, string[]>;
  /** Image target digest → manifests that name no config in their labels (blob present). */
  needManifest: Map<string, string[]>;
  /** Config digest → image target digests. */
  configs: Map<string, string[]>;
}

/** `containerd.io/gc.ref.content.<n>`: how dockerd's `commit` labels a manifest's children. */
const LABEL_NUMBERED = /^containerd\.io\/gc\.ref\.content\.\d+$/;

function snapshotLabel(blob: ContentBlob | undefined): string | undefined {
  if (blob === undefined) return undefined;
  for (const [k, v] of blob.labels) {
    if (k.startsWith(SNAPSHOT_PREFIX) && LABEL_SNAPSHOT.test(k)) {
      return DIGEST.test(v) ? v : undefined;
    }
  }
  return undefined;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key) ?? [];
  if (!list.includes(value)) list.push(value);
  map.set(key, list);
}

/**
 * Chain IDs of image targets from `ctr content ls` labels: index (`gc.ref.content.m.*`) →
 * manifests (`gc.ref.content.config`, or dockerd commit's numbered `gc.ref.content.<n>`) →
 * configs (`gc.ref.snapshot.<snapshotter>`). What labels do not say is listed to be read.
 */
export function chainsFromLabels(
  targets: Iterable<string>,
  content: Map<string, ContentBlob>,
): LabelChains {
  const out: LabelChains = {
    chains: new Map(),
    needConfig: new Map(),
    needManifest: new Map(),
    configs: new Map(),
  };
  for (const target of new Set(targets)) {
    const blob = content.get(target);
    if (blob === undefined) continue; // no content: chain unknown
    const children = [...blob.labels].filter(([k]) => LABEL_MANIFEST.test(k)).map(([, v]) => v);
    const manifests = children.length > 0 ? children : [target];
    for (const m of manifests) {
      const mb = content.get(m);
      if (mb === undefined) continue; // another platform, not fetched
      const named = mb.labels.get(LABEL_CONFIG);
      const configs = named !== undefined ? [named] : [...mb.labels]
        .filter(([k, v]) => LABEL_NUMBERED.test(k) && snapshotLabel(content.get(v)) !== undefined)
        .map(([, v]) => v);
      if (configs.length === 0) {
        push(out.needManifest, target, m);
        continue;
      }
      for (const config of configs) {
        push(out.configs, config, target);
        const chain = snapshotLabel(content.get(config));
        if (chain !== undefined) {
          const set = out.chains.get(target) ?? new Set<string>();
          set.add(chain);
          out.chains.set(target, set);
        } else if (content.has(config)) push(out.needConfig, target, config);
      }
    }
  }
  return out;
}

/** The config digest a manifest's JSON names; throws on anything else. */
export function configOfManifest(json: string): string {
  const digest = JSON.parse(json)?.config?.digest;
  if (typeof digest !== "string" || !DIGEST.test(digest)) throw new Error("manifest has no config");
  return digest;
}
