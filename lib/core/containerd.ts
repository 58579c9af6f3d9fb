/**
 * The typed shapes of what containerd holds, as ctre reads them: rows of ctr's listings
 * (lib/ctr/listings.ts parses them) and one namespace's inventory (lib/node/inventory.ts gathers
 * it). Types only, so the pure policy (lib/policy/) can name them without importing ctr.
 *
 * @module
 */

export interface ContentBlob {
  digest: string;
  size: number;
  /** Lower bound of the age in seconds, see {@linkcode parseAge}. */
  ageSeconds: number;
  ageText: string;
  labels: Map<string, string>;
}

export interface ImageRow {
  ref: string;
  type: string;
  digest: string;
  size: number;
  platforms: string;
  labels: Map<string, string>;
}

export interface ContainerRow {
  id: string;
  /** null for containers without an image (`-`, e.g. dockerd's in namespace moby). */
  image: string | null;
  runtime: string;
}

export interface TaskRow {
  id: string;
  pid: number;
  status: string;
}

export interface ContainerInfo {
  id: string;
  image: string;
  labels: Record<string, string>;
  createdAt: string;
  updatedAt: string;
  /** `SnapshotKey` ("" when the container has no snapshot, e.g. docker's or a rootfs path). */
  snapshotKey?: string;
  /** `Snapshotter` ("" when none). */
  snapshotter?: string;
  /** CRI's record of the image it runs (`ImageRef` of the CRI metadata extension), or null. */
  criImageRef?: string | null;
}

/** One row of `ctr snapshot ls`. */
export interface SnapshotRow {
  key: string;
  /** null for a bottom layer. */
  parent: string | null;
  /** `Active`, `Committed` or `View`. */
  kind: string;
}

/** Everything lib/policy/lineage.ts's `resolveUsers` reads about one namespace. */
export interface LineageInput {
  ns: string;
  images: ImageRow[];
  containers: ContainerRow[];
  /** All snapshots of the namespace (every snapshotter in use); absent: not listed. */
  snapshots?: SnapshotRow[];
  /** The same snapshots by snapshotter ("" when ctr's default was listed, no label naming one). */
  snapshotsBy?: Map<string, SnapshotRow[]>;
  /** `ctr snapshot usage -b` of each listed snapshotter: key → bytes (absent: not measured). */
  usage?: Map<string, Map<string, number>>;
  /** Why some snapshotter's usage could not be measured (its snapshots then count 0 bytes). */
  usageError?: string;
  /** Why the snapshots could not all be listed (every image is then kept). */
  snapshotsError?: string;
  /** Lease IDs; absent when not listed (listed only when unclaimed active snapshots exist). */
  leases?: string[];
  /** Image target digest → chain IDs; an image absent here has an unknown chain. */
  chains?: Map<string, Set<string>>;
  /** Config digest → image target digests. */
  configs?: Map<string, string[]>;
  /** `ctr containers info` of the containers lineage needed it for. */
  infos?: Map<string, ContainerInfo>;
}

/** One namespace as lib/node/inventory.ts gathers it: the lineage input and its content. */
export interface NamespaceSnapshot extends LineageInput {
  content: Map<string, ContentBlob>;
}
