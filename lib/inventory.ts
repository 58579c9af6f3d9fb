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

/** Sum of blob sizes, each digest counted once across namespaces. */
export function contentBytes(snaps: { content: Map<string, { size: number }> }[]): number {
  const seen = new Map<string, number>();
  for (const s of snaps) for (const [d, b] of s.content) seen.set(d, b.size);
  let total = 0;
  for (const size of seen.values()) total += size;
  return total;
}

/** The content store's size over `namespaces`: one `ctr content ls` each, digests once. */
export async function measureContent(ctr: Ctr, namespaces: string[]): Promise<number> {
  const lists = await Promise.all(
    namespaces.map(async (ns) => ({
      content: new Map(
        parseContentLs(await ctrOk(ctr, ["-n", ns, "content", "ls"])).map((b) => [b.digest, b]),
      ),
    })),
  );
  return contentBytes(lists);
}
