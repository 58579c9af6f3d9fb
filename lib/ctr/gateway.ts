/**
 * The typed gateway to containerd: what ctre asks of it, in containerd's terms (images,
 * content, containers, tasks, snapshots, leases, events). The one implementation over `ctr` is
 * lib/ctr/ctr_gateway.ts, the only place that pairs a ctr command line with its parser and knows
 * how ctr versions differ; tests use a typed fake (tests/support/fake_containerd.ts).
 *
 * Failures: a ctr that exits non-zero throws a CtrExitError (its stderr says why: a container
 * gone, containerd not answering), a ctr that cannot be started a CtrError, output of the wrong
 * shape a ParseError; messages name the ctr command.
 *
 * @module
 */
import type { ParseError } from "../core/errors.ts";
import type {
  ContainerInfo,
  ContainerRow,
  ContentBlob,
  ImageRow,
  SnapshotRow,
  TaskRow,
} from "../core/containerd.ts";
import type { CtrEvent } from "./events.ts";
import type { ImageRemoval } from "./image_removal.ts";

export type { ImageRemoval };

/** What containerd holds: one listing each. */
export interface ContainerdListings {
  /** Every namespace (`ctr namespace ls -q`). */
  namespaces(): Promise<string[]>;
  /** The images of `ns`; with `refs`, only those named (an empty `refs`: none). */
  listImages(ns: string, refs?: string[]): Promise<ImageRow[]>;
  /** The content blobs of `ns`, with sizes, ages and labels. */
  listContent(ns: string): Promise<ContentBlob[]>;
  /** The digests of the content blobs of `ns` (a cheaper listing, for counting). */
  contentDigests(ns: string): Promise<string[]>;
  /** The containers of `ns`; with `withLabel`, only those that carry that label. */
  listContainers(ns: string, withLabel?: string): Promise<ContainerRow[]>;
  /** The tasks of `ns`. */
  listTasks(ns: string): Promise<TaskRow[]>;
  /** What containerd knows of container `id` (a CtrExitError when it is gone). */
  containerInfo(ns: string, id: string): Promise<ContainerInfo>;
  /** The snapshots of `snapshotter` in `ns` (containerd's default one when not named). */
  listSnapshots(ns: string, snapshotter?: string): Promise<SnapshotRow[]>;
  /**
   * What each snapshot of `snapshotter` in `ns` (containerd's default one when not named) holds
   * on disk: snapshot key → bytes. containerd stores a committed snapshot's usage when it is
   * committed and walks only active ones (a container's writable layer).
   */
  snapshotUsage(ns: string, snapshotter?: string): Promise<Map<string, number>>;
  /** The IDs of the leases of `ns`. */
  listLeases(ns: string): Promise<string[]>;
  /** The bytes of content blob `digest`, as text (manifests and configs are JSON). */
  getContent(ns: string, digest: string): Promise<string>;
}

/** What ctre changes: removals, label changes, garbage collection. */
export interface ContainerdChanges {
  /**
   * Removes the images `refs` of `ns` in one go, each ref's outcome read back (ctr goes on past
   * a failed ref). `sync` waits for the garbage collection. Throws only when ctr cannot start.
   */
  removeImages(ns: string, refs: string[], sync: boolean): Promise<ImageRemoval>;
  /**
   * Removes containers `ids` of `ns` (with their tasks and snapshots), one after the other;
   * returns what ctr said about those it could not remove (lines, each naming its container).
   */
  removeContainers(ns: string, ids: string[]): Promise<string[]>;
  /** Removes the labels `labels` of content blob `digest` (a CtrExitError when it fails). */
  clearContentLabels(ns: string, digest: string, labels: string[]): Promise<void>;
  /**
   * Sets label `key` of image `ref` in `ns` to `value` (an empty value removes it); a
   * CtrExitError when it fails (the image is gone).
   */
  labelImage(ns: string, ref: string, key: string, value: string): Promise<void>;
  /** Creates a lease that expires after `expires` (Go duration, e.g. `1h`); returns its ID. */
  createLease(ns: string, expires: string): Promise<string>;
  /** Deletes lease `id`; `sync` runs a garbage collection and waits for it. */
  deleteLease(ns: string, id: string, sync: boolean): Promise<void>;
}

/** containerd's events, one parsed line each (a line that does not parse: its ParseError). */
export interface EventStream {
  events: AsyncIterable<CtrEvent | ParseError>;
  /** Resolves once the stream has ended, with ctr's exit code and stderr. */
  done: Promise<{ code: number; stderr: string }>;
  /** Stops following. */
  stop(): void;
}

/** Another containerd to ask for its version (k3s's socket), with a dial timeout. */
export interface OtherAddress {
  address: string;
  /** Go duration, e.g. `2s`. */
  connectTimeout: string;
}

/** containerd itself: versions and events. */
export interface ContainerdDaemon {
  /** The version of ctr itself (`ctr --version`), e.g. `ctr github.com/containerd/… 1.7.24`. */
  clientVersion(): Promise<string>;
  /** The server's version (undefined when it answers without one), or another's at `other`. */
  serverVersion(other?: OtherAddress): Promise<string | undefined>;
  /**
   * Follows containerd's events until stopped or containerd goes away. A topic `wantPayload`
   * says no to comes with an empty payload, its JSON not parsed (default: every payload).
   */
  events(wantPayload?: (topic: string) => boolean): EventStream;
  /**
   * Follows only the image events (`/images/create`, `/images/update`, `/images/delete`) of
   * namespace `ns`, filtered by containerd itself, until stopped.
   */
  imageEvents(ns: string): EventStream;
}

/** Everything ctre asks of containerd. */
export interface Containerd extends ContainerdListings, ContainerdChanges, ContainerdDaemon {}
