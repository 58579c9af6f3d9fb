/**
 * Images of known, incompressible sizes for the disk tests: every layer holds a file of random
 * bytes (and the base layer busybox, so a container can run and write), uncompressed, so a
 * layer's blob and its unpacked snapshot are both about the file's size. Images may share layers
 * (a common base), as pulled images do.
 *
 * @module
 */
import {
  type Blob,
  blob,
  blobEntry,
  hostArch,
  json,
  MEDIA_TYPE_CONFIG,
  MEDIA_TYPE_LAYER,
  MEDIA_TYPE_MANIFEST,
  type TarEntry,
  writeTar,
} from "../../scripts/oci.ts";

export const MiB = 1024 * 1024;
const CREATED = "2024-01-01T00:00:00Z";

/** `n` random bytes. */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65536) {
    crypto.getRandomValues(out.subarray(at, Math.min(n, at + 65536)));
  }
  return out;
}

/** A layer holding `/<name>.bin` of `bytes` random bytes, and busybox when `busybox`. */
export async function randomLayer(name: string, bytes: number, busybox = false): Promise<Blob> {
  const entries: TarEntry[] = [];
  if (busybox) {
    entries.push(
      { type: "dir", name: "bin/" },
      { type: "file", name: "bin/busybox", data: await Deno.readFile("/bin/busybox"), mode: 0o755 },
      { type: "symlink", name: "bin/sh", target: "busybox" },
      { type: "symlink", name: "bin/sleep", target: "busybox" },
      { type: "symlink", name: "bin/dd", target: "busybox" },
    );
  }
  entries.push({ type: "file", name: `${name}.bin`, data: randomBytes(bytes) });
  return await blob(writeTar(entries));
}

/** One image of a layout: its ref and layers (bottom first). */
export interface DiskImageSpec {
  ref: string;
  layers: Blob[];
}

/** What {@linkcode diskLayout} built: each image's manifest digest, and the tarball. */
export interface DiskLayout {
  digests: Map<string, string>;
  tar: Uint8Array;
}

/** One OCI image-layout tarball holding `images` (shared layers stored once). */
export async function diskLayout(images: DiskImageSpec[]): Promise<DiskLayout> {
  const blobs = new Map<string, Blob>();
  const digests = new Map<string, string>();
  const manifests: unknown[] = [];
  for (const { ref, layers } of images) {
    const config = await blob(json({
      created: CREATED,
      architecture: hostArch(),
      os: "linux",
      config: { Env: ["PATH=/bin"], Cmd: ["sh"], Labels: { "ctre.test/ref": ref } },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
      history: layers.map(() => ({ created: CREATED, created_by: "ctre disk test" })),
    }));
    const manifest = await blob(json({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_MANIFEST,
      config: { mediaType: MEDIA_TYPE_CONFIG, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: MEDIA_TYPE_LAYER, digest: l.digest, size: l.size })),
    }));
    for (const b of [config, manifest, ...layers]) blobs.set(b.digest, b);
    digests.set(ref, manifest.digest);
    manifests.push({
      mediaType: MEDIA_TYPE_MANIFEST,
      digest: manifest.digest,
      size: manifest.size,
      annotations: { "io.containerd.image.name": ref },
    });
  }
  const tar = writeTar([
    { type: "file", name: "oci-layout", data: json({ imageLayoutVersion: "1.0.0" }) },
    { type: "file", name: "index.json", data: json({ schemaVersion: 2, manifests }) },
    { type: "dir", name: "blobs/" },
    { type: "dir", name: "blobs/sha256/" },
    ...[...blobs.values()].map(blobEntry),
  ]);
  return { digests, tar };
}
