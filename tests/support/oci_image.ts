/**
 * Builds tiny OCI images offline, for importing into a test containerd with `ctr image import`.
 *
 * Each image has one uncompressed layer (two on request, see {@linkcode buildOciImage}): `bin/busybox` (a copy of the host's /bin/busybox),
 * the symlinks `bin/sh`, `bin/sleep`, `bin/true` -> `busybox`, and a file `/variant` holding the
 * variant string, so different variants have different digests. Everything is deterministic
 * (fixed mtimes, owners and order): the same ref and variant always give the same digests.
 *
 * @module
 */

import {
  type Blob,
  blob,
  hostArch,
  json,
  MEDIA_TYPE_CONFIG,
  MEDIA_TYPE_LAYER,
  MEDIA_TYPE_MANIFEST,
  type TarEntry,
  writeTar,
} from "../../scripts/oci.ts";

// The tar writer and blob helpers live in scripts/oci.ts (the release image uses them too).
export { type Blob, hostArch, MEDIA_TYPE_CONFIG, MEDIA_TYPE_LAYER, MEDIA_TYPE_MANIFEST, writeTar };

const BUSYBOX = "/bin/busybox";
const encoder = new TextEncoder();
const CREATED = "2024-01-01T00:00:00Z";

/** An image built in memory: its manifest (the image target digest), config and layer(s). */
export interface OciImage {
  ref: string;
  manifest: Blob;
  config: Blob;
  /** The (first) layer: busybox, its links and `/variant`. */
  layer: Blob;
  /** Every layer in order: `layer`, then for a two-layer image one adding `/layer2`. */
  layers: Blob[];
  /** The whole OCI image-layout tarball, ready for `ctr image import`. */
  tar: Uint8Array;
}

// ---------------------------------------------------------------------------------------------

let busyboxBytes: Uint8Array | undefined;

async function busybox(): Promise<Uint8Array> {
  busyboxBytes ??= await Deno.readFile(BUSYBOX);
  return busyboxBytes;
}

/** The tag part of a ref (`docker.io/library/a:1` -> `1`), or `latest` when it has none. */
function tagOf(ref: string): string {
  const name = ref.split("@")[0] ?? ref;
  const lastSlash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  return colon > lastSlash ? name.slice(colon + 1) : "latest";
}

/**
 * Builds the image for `ref` and `variant` in memory. With `layers: 2` a second layer adds the
 * file `/layer2` (holding the variant), so running the image needs both layers. `cmd` replaces
 * the config's default command (`["sh"]`), e.g. a long `sleep` for a CRI sandbox ("pause") image.
 */
export async function buildOciImage(
  ref: string,
  variant: string,
  opts: { layers?: 1 | 2; cmd?: string[] } = {},
): Promise<OciImage> {
  const layer = await blob(writeTar([
    { type: "dir", name: "bin/" },
    { type: "file", name: "bin/busybox", data: await busybox(), mode: 0o755 },
    { type: "symlink", name: "bin/sh", target: "busybox" },
    { type: "symlink", name: "bin/sleep", target: "busybox" },
    { type: "symlink", name: "bin/true", target: "busybox" },
    { type: "file", name: "variant", data: encoder.encode(variant) },
  ]));
  const layers = [layer];
  if (opts.layers === 2) {
    layers.push(
      await blob(writeTar([{ type: "file", name: "layer2", data: encoder.encode(variant) }])),
    );
  }
  const config = await blob(json({
    created: CREATED,
    architecture: hostArch(),
    os: "linux",
    config: { Env: ["PATH=/bin"], Cmd: opts.cmd ?? ["sh"] },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
    history: layers.map(() => ({
      created: CREATED,
      created_by: `ctre test image, variant ${variant}`,
    })),
  }));
  const manifest = await blob(json({
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_MANIFEST,
    config: { mediaType: MEDIA_TYPE_CONFIG, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: MEDIA_TYPE_LAYER, digest: l.digest, size: l.size })),
  }));
  const index = json({
    schemaVersion: 2,
    manifests: [{
      mediaType: MEDIA_TYPE_MANIFEST,
      digest: manifest.digest,
      size: manifest.size,
      annotations: {
        "io.containerd.image.name": ref,
        "org.opencontainers.image.ref.name": tagOf(ref),
      },
    }],
  });
  const blobEntry = (b: Blob): TarEntry => ({
    type: "file",
    name: `blobs/sha256/${b.digest.slice("sha256:".length)}`,
    data: b.bytes,
  });
  const tar = writeTar([
    { type: "file", name: "oci-layout", data: json({ imageLayoutVersion: "1.0.0" }) },
    { type: "file", name: "index.json", data: index },
    { type: "dir", name: "blobs/" },
    { type: "dir", name: "blobs/sha256/" },
    blobEntry(manifest),
    blobEntry(config),
    ...layers.map(blobEntry),
  ]);
  return { ref, manifest, config, layer, layers, tar };
}

/** Writes the OCI image-layout tarball of `ref`/`variant` to `path`. */
export async function buildOciTar(path: string, ref: string, variant: string): Promise<void> {
  const image = await buildOciImage(ref, variant);
  await Deno.writeFile(path, image.tar);
}

/** One image of an {@linkcode OciImageSet}: its ref and the digests that identify it. */
export interface OciSetImage {
  ref: string;
  /** The image target (manifest) digest, as `ctr image ls` shows it. */
  digest: string;
  config: string;
}

/** Many images in one OCI image-layout tarball, sharing one layer. */
export interface OciImageSet {
  images: OciSetImage[];
  /** The shared layer's digest. */
  layer: string;
  /** The whole tarball: one `ctr image import` creates every image of the set. */
  tar: Uint8Array;
}

/**
 * Builds many images cheaply, for benchmarks: every image has the SAME layer (the one
 * {@linkcode buildOciImage} builds for `layerVariant`, so `sh`, `sleep` and `true` work) and
 * differs only by its config (a label and a history line carrying its variant), so each has its
 * own manifest digest while the set adds only two tiny blobs per image. The index names every
 * image (`io.containerd.image.name`), so one import creates them all; unpacking one unpacks all
 * (they share one snapshot).
 */
export async function buildOciImageSet(
  entries: { ref: string; variant: string }[],
  layerVariant = "shared",
): Promise<OciImageSet> {
  const layer = await blob(writeTar([
    { type: "dir", name: "bin/" },
    { type: "file", name: "bin/busybox", data: await busybox(), mode: 0o755 },
    { type: "symlink", name: "bin/sh", target: "busybox" },
    { type: "symlink", name: "bin/sleep", target: "busybox" },
    { type: "symlink", name: "bin/true", target: "busybox" },
    { type: "file", name: "variant", data: encoder.encode(layerVariant) },
  ]));
  const blobs = new Map<string, Blob>([[layer.digest, layer]]);
  const images: OciSetImage[] = [];
  const manifests: unknown[] = [];
  for (const { ref, variant } of entries) {
    const config = await blob(json({
      created: CREATED,
      architecture: hostArch(),
      os: "linux",
      config: { Env: ["PATH=/bin"], Cmd: ["sh"], Labels: { "ctre.test/variant": variant } },
      rootfs: { type: "layers", diff_ids: [layer.digest] },
      history: [{ created: CREATED, created_by: `ctre test image, variant ${variant}` }],
    }));
    const manifest = await blob(json({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_MANIFEST,
      config: { mediaType: MEDIA_TYPE_CONFIG, digest: config.digest, size: config.size },
      layers: [{ mediaType: MEDIA_TYPE_LAYER, digest: layer.digest, size: layer.size }],
    }));
    blobs.set(config.digest, config);
    blobs.set(manifest.digest, manifest);
    images.push({ ref, digest: manifest.digest, config: config.digest });
    manifests.push({
      mediaType: MEDIA_TYPE_MANIFEST,
      digest: manifest.digest,
      size: manifest.size,
      annotations: {
        "io.containerd.image.name": ref,
        "org.opencontainers.image.ref.name": tagOf(ref),
      },
    });
  }
  const tar = writeTar([
    { type: "file", name: "oci-layout", data: json({ imageLayoutVersion: "1.0.0" }) },
    { type: "file", name: "index.json", data: json({ schemaVersion: 2, manifests }) },
    { type: "dir", name: "blobs/" },
    { type: "dir", name: "blobs/sha256/" },
    ...[...blobs.values()].map((b): TarEntry => ({
      type: "file",
      name: `blobs/sha256/${b.digest.slice("sha256:".length)}`,
      data: b.bytes,
    })),
  ]);
  return { images, layer: layer.digest, tar };
}
