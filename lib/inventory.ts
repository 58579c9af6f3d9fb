/**
 * What containerd holds, per namespace: one snapshot is three ctr calls (content, images,
 * containers), listed in that order so a container created while we list is seen.
 *
 * @module
 */
import { type Ctr, ctrOk } from "./ctr.ts";
import {
  type ContainerRow,
  type ContentBlob,
  type ImageRow,
  parseContainerLs,
  parseContentLs,
  parseImageLs,
} from "./listings.ts";

export interface NamespaceSnapshot {
  ns: string;
  images: ImageRow[];
  content: Map<string, ContentBlob>;
  containers: ContainerRow[];
}

/** Content, images and containers of one namespace. */
export async function snapshotNamespace(ctr: Ctr, ns: string): Promise<NamespaceSnapshot> {
  const content = parseContentLs(await ctrOk(ctr, ["-n", ns, "content", "ls"]));
  const images = parseImageLs(await ctrOk(ctr, ["-n", ns, "image", "ls"]));
  const containers = parseContainerLs(await ctrOk(ctr, ["-n", ns, "container", "ls"]));
  return { ns, images, content: new Map(content.map((b) => [b.digest, b])), containers };
}

/** Snapshots of all `namespaces`, taken concurrently. */
export function snapshotAll(ctr: Ctr, namespaces: string[]): Promise<NamespaceSnapshot[]> {
  return Promise.all(namespaces.map((ns) => snapshotNamespace(ctr, ns)));
}
