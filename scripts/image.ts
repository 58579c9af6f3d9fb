// deno-lint-ignore-file no-console
/**
 * `deno task image`: builds ctre's container image offline, as an OCI image-layout tarball
 * (`dist/ctre-image.tar`, for `ctr image import` or `skopeo copy oci-archive:…`).
 *
 * One layer, nothing but:
 * - ctre: `dist/ctre-<arch>-linux` when `deno compile` built it (it needs network, so elsewhere);
 *   otherwise the Deno binary running this script plus ctre's sources (main.ts, lib/, deno.json)
 *   in /app, started with exactly the shipped permission flags (lib/cli/permissions.ts);
 * - `ctr` from Debian's containerd package (scripts/debian_pkg.sh; see CTR_PACKAGE for which);
 * - the shared libraries both need (from `ldd`) and the glibc loader;
 * - empty mount points: /var/spool/ctre, /run/containerd, /proc, /dev, /sys.
 * No shell, no package manager, no other file. The entrypoint is ctre, so the container's
 * arguments are ctre's (`prune --dry-run`, `record-image-starts`). Deno needs no writable
 * DENO_DIR: where it cannot create one (a read-only root), it compiles the sources in memory.
 *
 *   deno task image [--output FILE] [--no-compiled]
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { permissionFlags, RUNTIME_FLAGS } from "../lib/cli/permissions.ts";
import { VERSION } from "../lib/core/version.ts";
import {
  blob,
  blobEntry,
  hostArch,
  json,
  MEDIA_TYPE_CONFIG,
  MEDIA_TYPE_LAYER_GZIP,
  MEDIA_TYPE_MANIFEST,
  MTIME,
  type TarEntry,
  writeTar,
} from "./oci.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * The Debian package the image's `ctr` comes from. ctr formats the listings ctre parses on the
 * client side, so the image pins one client; 1.7 (Debian 13's, containerd's long-term line)
 * speaks the v1 gRPC API that containerd 1.6, 1.7 and 2.x all serve, and the test suite runs
 * against all three. Override with CTRE_IMAGE_CTR="SUITE PACKAGE=VERSION".
 */
export const CTR_PACKAGE = ["trixie", "containerd=1.7.24~ds1-6+deb13u1"] as const;

/** The image's name inside the tarball (`io.containerd.image.name`). */
export const IMAGE_REF = `ctre.local/ctre:${VERSION}`;
/** Where ctre's sources go when the image runs them with Deno. */
export const APP_DIR = "/app";
const CREATED = new Date(MTIME * 1000).toISOString().replace(/\.\d+Z$/, "Z");

export interface ImageOptions {
  /** The tarball to write. */
  output: string;
  /** The ctr binary to include. */
  ctr: string;
  /** A `deno compile` output to use instead of Deno plus sources; none when absent. */
  compiled?: string;
  /** The Deno binary (default: the one running this). */
  deno?: string;
}

export interface ImageInfo {
  ref: string;
  /** The manifest digest (what `ctr image ls` shows). */
  digest: string;
  entrypoint: string[];
  /** Bytes of the tarball (= the compressed layer plus a few KB of JSON). */
  tarBytes: number;
  /** Bytes of the unpacked root filesystem (file contents). */
  unpackedBytes: number;
  /** Paths in the image, with their sources on this machine. */
  files: { path: string; source: string }[];
}

/** The shared objects `binary` loads, from ldd: [path in the image, file to copy]. */
export async function sharedLibraries(binary: string): Promise<[string, string][]> {
  const out = await new Deno.Command("ldd", { args: [binary], stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (out.code !== 0) {
    // A static binary: "not a dynamic executable".
    if (/not a dynamic executable/.test(text + new TextDecoder().decode(out.stderr))) return [];
    throw new Error(`ldd ${binary} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  const libs: [string, string][] = [];
  for (const line of text.split("\n")) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)", "/lib64/ld-linux-x86-64.so.2 (0x…)"
    const m = /=>\s+(\/\S+)\s+\(/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.push([m[1], await Deno.realPath(m[1])]);
    else if (/=> not found/.test(line)) throw new Error(`ldd ${binary}: ${line.trim()}`);
  }
  return libs;
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The sources `deno run` needs, relative to the repo: main.ts, every .ts below lib/, deno.json. */
async function sources(): Promise<string[]> {
  const lib: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for await (const e of Deno.readDir(join(ROOT, dir))) {
      if (e.isDirectory) await walk(`${dir}/${e.name}`);
      else if (e.isFile && e.name.endsWith(".ts")) lib.push(`${dir}/${e.name}`);
    }
  };
  await walk("lib");
  return ["deno.json", "main.ts", ...lib.sort()];
}

/** Every parent dir of `paths` (without "/"), sorted so parents come first. */
function parents(paths: string[]): string[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    for (let d = dirname(p); d !== "/" && d !== "."; d = dirname(d)) dirs.add(d);
  }
  return [...dirs].sort();
}

/** Builds the image tarball. */
export async function buildImage(opts: ImageOptions): Promise<ImageInfo> {
  const files: { path: string; source: string; mode: number }[] = [];
  let entrypoint: string[];
  const binaries: string[] = [opts.ctr];
  files.push({ path: "/usr/bin/ctr", source: opts.ctr, mode: 0o755 });
  if (opts.compiled !== undefined) {
    files.push({ path: "/usr/bin/ctre", source: opts.compiled, mode: 0o755 });
    binaries.push(opts.compiled);
    entrypoint = ["/usr/bin/ctre"];
  } else {
    const deno = await Deno.realPath(opts.deno ?? Deno.execPath());
    files.push({ path: "/usr/bin/deno", source: deno, mode: 0o755 });
    binaries.push(deno);
    for (const rel of await sources()) {
      files.push({ path: `${APP_DIR}/${rel}`, source: join(ROOT, rel), mode: 0o644 });
    }
    entrypoint = [
      "/usr/bin/deno",
      "run",
      ...RUNTIME_FLAGS,
      ...permissionFlags(),
      `${APP_DIR}/main.ts`,
    ];
  }
  const libs = new Map<string, string>();
  for (const b of binaries) {
    for (const [path, source] of await sharedLibraries(b)) libs.set(path, source);
  }
  for (const [path, source] of [...libs].sort()) files.push({ path, source, mode: 0o755 });

  // Mount points: the state dir and containerd's socket dir are bind-mounted; runc creates the
  // others on a read-only root only if they exist.
  const mountPoints = ["/var/spool/ctre", "/run/containerd", "/proc", "/dev", "/sys", "/tmp"];
  const dirs = [
    ...new Set([
      ...parents(files.map((f) => f.path)),
      ...parents(mountPoints.map((m) => `${m}/x`)),
    ]),
  ]
    .sort();
  const entries: TarEntry[] = dirs.map((d) => ({
    type: "dir",
    name: `${d.slice(1)}/`,
    mode: d === "/var/spool/ctre" ? 0o700 : d === "/tmp" ? 0o1777 : 0o755,
  }));
  let unpackedBytes = 0;
  for (const f of files.sort((a, b) => a.path.localeCompare(b.path))) {
    const data = await Deno.readFile(f.source);
    unpackedBytes += data.length;
    entries.push({ type: "file", name: f.path.slice(1), data, mode: f.mode });
  }
  const layerTar = writeTar(entries);
  const diffId = (await blob(layerTar)).digest;
  const layer = await blob(await gzip(layerTar));
  const config = await blob(json({
    created: CREATED,
    architecture: hostArch(),
    os: "linux",
    config: {
      Entrypoint: entrypoint,
      Cmd: ["--help"],
      Env: [
        "PATH=/usr/bin",
        // Not created on a read-only root: Deno then keeps its caches in memory.
        "DENO_DIR=/tmp/deno",
        "DENO_NO_UPDATE_CHECK=1",
        "DENO_NO_PROMPT=1",
        "NO_COLOR=1",
      ],
      WorkingDir: "/",
      Labels: {
        "org.opencontainers.image.title": "ctre",
        "org.opencontainers.image.version": VERSION,
        "org.opencontainers.image.description":
          "Keeps containerd nodes free of stale images, never deleting one still needed",
      },
    },
    rootfs: { type: "layers", diff_ids: [diffId] },
    history: [{ created: CREATED, created_by: "deno task image (scripts/image.ts)" }],
  }));
  const manifest = await blob(json({
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_MANIFEST,
    config: { mediaType: MEDIA_TYPE_CONFIG, digest: config.digest, size: config.size },
    layers: [{ mediaType: MEDIA_TYPE_LAYER_GZIP, digest: layer.digest, size: layer.size }],
  }));
  const index = json({
    schemaVersion: 2,
    manifests: [{
      mediaType: MEDIA_TYPE_MANIFEST,
      digest: manifest.digest,
      size: manifest.size,
      platform: { architecture: hostArch(), os: "linux" },
      annotations: {
        "io.containerd.image.name": IMAGE_REF,
        "org.opencontainers.image.ref.name": VERSION,
      },
    }],
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
  await Deno.mkdir(dirname(opts.output), { recursive: true });
  const tmp = `${opts.output}.tmp`;
  await Deno.writeFile(tmp, tar);
  await Deno.rename(tmp, opts.output);
  return {
    ref: IMAGE_REF,
    digest: manifest.digest,
    entrypoint,
    tarBytes: tar.length,
    unpackedBytes,
    files: files.map(({ path, source }) => ({ path, source })),
  };
}

async function debianPkg(suite: string, pkg: string): Promise<string | null> {
  const out = await new Deno.Command("bash", {
    args: [join(ROOT, "scripts/debian_pkg.sh"), suite, pkg],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  return out.code === 0 ? new TextDecoder().decode(out.stdout).trim() : null;
}

/**
 * Fetches (or finds cached) the Debian containerd package; returns its ctr. Debian keeps only a
 * suite's current version: when a point release replaced the pinned one, it takes the suite's
 * current containerd and says so.
 */
export async function debianCtr(): Promise<string> {
  const override = Deno.env.get("CTRE_IMAGE_CTR");
  const [suite, pkg] = override ? override.split(/\s+/) : CTR_PACKAGE;
  if (!suite || !pkg) throw new Error(`CTRE_IMAGE_CTR must be "SUITE PACKAGE=VERSION"`);
  let dir = await debianPkg(suite, pkg);
  const name = pkg.split("=")[0]!;
  if (dir === null && override === undefined && name !== pkg) {
    console.error(`${pkg} is no longer in ${suite}: taking its current ${name}`);
    dir = await debianPkg(suite, name);
  }
  if (dir === null) throw new Error(`scripts/debian_pkg.sh ${suite} ${pkg} failed`);
  return `${dir}/usr/bin/ctr`;
}

/** `dist/ctre-<arch>-linux` when `deno compile` built it for this machine. */
async function compiledBinary(): Promise<string | undefined> {
  const path = join(ROOT, `dist/ctre-${Deno.build.arch}-linux`);
  try {
    return (await Deno.stat(path)).isFile ? path : undefined;
  } catch {
    return undefined;
  }
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

if (import.meta.main) {
  const args = [...Deno.args];
  let output = join(ROOT, "dist/ctre-image.tar");
  let useCompiled = true;
  while (args.length) {
    const a = args.shift();
    if (a === "--output" && args.length) output = resolve(args.shift()!);
    else if (a === "--no-compiled") useCompiled = false;
    else {
      console.error("Usage: deno task image [--output FILE] [--no-compiled]");
      Deno.exit(2);
    }
  }
  try {
    const compiled = useCompiled ? await compiledBinary() : undefined;
    const info = await buildImage({
      output,
      ctr: await debianCtr(),
      ...(compiled === undefined ? {} : { compiled }),
    });
    console.error(`Built ${output}: ${info.ref} ${info.digest}`);
    console.error(`  entrypoint: ${info.entrypoint.join(" ")}`);
    console.error(`  tarball ${mb(info.tarBytes)}, unpacked ${mb(info.unpackedBytes)}`);
    for (const f of info.files) console.error(`  ${f.path} <- ${f.source}`);
    console.error(`Import: ctr -n k8s.io image import ${output}`);
  } catch (e) {
    console.error(`Cannot build the image: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(1);
  }
}
