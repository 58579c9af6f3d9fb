/**
 * Deterministic OCI image-layout pieces, shared by the release image (`deno task image`,
 * scripts/image.ts) and the tests' busybox images (tests/support/oci_image.ts): a minimal ustar
 * writer with fixed mtimes and owners, and content-addressed blobs.
 *
 * @module
 */

/** Fixed mtime of every tar entry: 2024-01-01T00:00:00Z. */
export const MTIME = 1704067200;

export const MEDIA_TYPE_INDEX = "application/vnd.oci.image.index.v1+json";
export const MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json";
export const MEDIA_TYPE_LAYER = "application/vnd.oci.image.layer.v1.tar";
export const MEDIA_TYPE_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";

/** One blob of an image: its digest (`sha256:…`), size and bytes. */
export interface Blob {
  digest: string;
  size: number;
  bytes: Uint8Array;
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

// A minimal deterministic ustar writer.

export type TarEntry =
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

/** `sha256:<hex>` of `bytes`. */
export async function sha256(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return "sha256:" + Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** `bytes` as a content-addressed blob. */
export async function blob(bytes: Uint8Array): Promise<Blob> {
  return { digest: await sha256(bytes), size: bytes.length, bytes };
}

/** Compact JSON as bytes. */
export function json(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** The tar entry of a blob in an image layout: `blobs/sha256/<hex>`. */
export function blobEntry(b: Blob): TarEntry {
  return { type: "file", name: `blobs/sha256/${b.digest.slice("sha256:".length)}`, data: b.bytes };
}
