/**
 * Builds tiny OCI images offline, for importing into a test containerd with `ctr image import`.
 *
 * Each image has ONE uncompressed layer: `bin/busybox` (a copy of the host's /bin/busybox),
 * the symlinks `bin/sh`, `bin/sleep`, `bin/true` -> `busybox`, and a file `/variant` holding the
 * variant string, so different variants have different digests. Everything is deterministic
 * (fixed mtimes, owners and order): the same ref and variant always give the same digests.
 *
 * @module
 */

const BUSYBOX = "/bin/busybox";
/** Fixed mtime of every tar entry: 2024-01-01T00:00:00Z. */
const MTIME = 1704067200;
const CREATED = "2024-01-01T00:00:00Z";

export const MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json";
export const MEDIA_TYPE_LAYER = "application/vnd.oci.image.layer.v1.tar";

/** One blob of the image: its digest (`sha256:…`), size and bytes. */
export interface Blob {
  digest: string;
  size: number;
  bytes: Uint8Array;
}

/** An image built in memory: its manifest (the image target digest), config and layer. */
export interface OciImage {
  ref: string;
  manifest: Blob;
  config: Blob;
  layer: Blob;
  /** The whole OCI image-layout tarball, ready for `ctr image import`. */
  tar: Uint8Array;
}

/** The OCI architecture name of the host (`amd64`, `arm64`). */
export function hostArch(): string {
  switch (Deno.build.arch) {
    case "x86_64":
      return "amd64";
    case "aarch64":
      return "arm64";
    default:
      return Deno.build.arch;
  }
}

// ---------------------------------------------------------------------------------------------
// A minimal deterministic ustar writer.

type TarEntry =
  | { type: "dir"; name: string; mode?: number }
  | { type: "file"; name: string; data: Uint8Array; mode?: number }
  | { type: "symlink"; name: string; target: string };

const encoder = new TextEncoder();

function putString(buf: Uint8Array, offset: number, length: number, value: string): void {
  const bytes = encoder.encode(value);
  if (bytes.length > length) {
    throw new Error(`tar: "${value}" does not fit in ${length} bytes`);
  }
  buf.set(bytes, offset);
}

/** An octal number, zero padded to length-1 digits and NUL terminated. */
function putOctal(buf: Uint8Array, offset: number, length: number, value: number): void {
  putString(buf, offset, length, value.toString(8).padStart(length - 1, "0") + "\0");
}

function tarHeader(entry: TarEntry, size: number): Uint8Array {
  const h = new Uint8Array(512);
  let name = entry.name;
  let prefix = "";
  if (encoder.encode(name).length > 100) {
    const cut = name.lastIndexOf("/", 154);
    if (cut <= 0) throw new Error(`tar: name too long: ${name}`);
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
  }
  const mode = entry.type === "symlink"
    ? 0o777
    : (entry.mode ?? (entry.type === "dir" ? 0o755 : 0o644));
  putString(h, 0, 100, name);
  putOctal(h, 100, 8, mode);
  putOctal(h, 108, 8, 0); // uid
  putOctal(h, 116, 8, 0); // gid
  putOctal(h, 124, 12, size);
  putOctal(h, 136, 12, MTIME);
  h.fill(0x20, 148, 156); // checksum placeholder: spaces
  h[156] = entry.type === "dir" ? 0x35 : entry.type === "symlink" ? 0x32 : 0x30; // '5' '2' '0'
  if (entry.type === "symlink") putString(h, 157, 100, entry.target);
  putString(h, 257, 6, "ustar\0");
  putString(h, 263, 2, "00");
  putString(h, 265, 32, "root");
  putString(h, 297, 32, "root");
  putOctal(h, 329, 8, 0); // devmajor
  putOctal(h, 337, 8, 0); // devminor
  putString(h, 345, 155, prefix);
  let sum = 0;
  for (const b of h) sum += b;
  putString(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

/** Serialises entries, in the given order, into a tar archive. */
export function writeTar(entries: TarEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const entry of entries) {
    const data = entry.type === "file" ? entry.data : new Uint8Array(0);
    const header = tarHeader(entry, data.length);
    parts.push(header);
    total += header.length;
    if (data.length > 0) {
      const padded = Math.ceil(data.length / 512) * 512;
      const block = new Uint8Array(padded);
      block.set(data);
      parts.push(block);
      total += padded;
    }
  }
  parts.push(new Uint8Array(1024)); // two zero blocks end the archive
  total += 1024;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

let busyboxBytes: Uint8Array | undefined;

async function busybox(): Promise<Uint8Array> {
  busyboxBytes ??= await Deno.readFile(BUSYBOX);
  return busyboxBytes;
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return "sha256:" + Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function blob(bytes: Uint8Array): Promise<Blob> {
  return { digest: await sha256(bytes), size: bytes.length, bytes };
}

function json(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** The tag part of a ref (`docker.io/library/a:1` -> `1`), or `latest` when it has none. */
function tagOf(ref: string): string {
  const name = ref.split("@")[0] ?? ref;
  const lastSlash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  return colon > lastSlash ? name.slice(colon + 1) : "latest";
}

/**
 * Builds the image for `ref` and `variant` in memory. `cmd` replaces the config's default
 * command (`["sh"]`), e.g. a long `sleep` for a CRI sandbox ("pause") image.
 */
export async function buildOciImage(
  ref: string,
  variant: string,
  cmd: string[] = ["sh"],
): Promise<OciImage> {
  const layer = await blob(writeTar([
    { type: "dir", name: "bin/" },
    { type: "file", name: "bin/busybox", data: await busybox(), mode: 0o755 },
    { type: "symlink", name: "bin/sh", target: "busybox" },
    { type: "symlink", name: "bin/sleep", target: "busybox" },
    { type: "symlink", name: "bin/true", target: "busybox" },
    { type: "file", name: "variant", data: encoder.encode(variant) },
  ]));
  const config = await blob(json({
    created: CREATED,
    architecture: hostArch(),
    os: "linux",
    config: { Env: ["PATH=/bin"], Cmd: cmd },
    rootfs: { type: "layers", diff_ids: [layer.digest] },
    history: [{ created: CREATED, created_by: `ctre test image, variant ${variant}` }],
  }));
  const manifest = await blob(json({
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_MANIFEST,
    config: { mediaType: MEDIA_TYPE_CONFIG, digest: config.digest, size: config.size },
    layers: [{ mediaType: MEDIA_TYPE_LAYER, digest: layer.digest, size: layer.size }],
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
    blobEntry(layer),
  ]);
  return { ref, manifest, config, layer, tar };
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
