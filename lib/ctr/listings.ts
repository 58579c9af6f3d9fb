/**
 * Typed parsers for each `ctr` listing ctre reads (shapes in docs/ctr-output.md,
 * containerd 1.6 to 2.x). Each throws a ParseError naming the command and the line.
 *
 * @module
 */
import { quoteCut } from "../core/text.ts";
import { ParseError } from "../core/errors.ts";
import { parseLabels, splitAligned, splitTabbed } from "./table.ts";
import { parseAge, parseSize } from "../core/units.ts";
import type {
  ContainerInfo,
  ContainerRow,
  ContentBlob,
  ImageRow,
  SnapshotRow,
  TaskRow,
} from "../core/containerd.ts";

const DIGEST = /^sha256:[0-9a-f]{64}$/;

function lines(text: string): string[] {
  return text.split("\n").map((l) => l.trim()).filter((l) => l !== "");
}

/** `ctr namespace ls -q`: one name per line. */
export function parseNamespaces(text: string): string[] {
  return lines(text).map((name) => {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
      throw new ParseError(`Unexpected namespace name ${quoteCut(name)} from ctr namespace ls -q`);
    }
    return name;
  });
}

/** `ctr content ls -q`: one digest per line. */
export function parseDigests(text: string): string[] {
  return lines(text);
}

/** `ctr content ls`: DIGEST SIZE AGE LABELS, tab-padded. */
export function parseContentLs(text: string): ContentBlob[] {
  const what = "ctr content ls";
  return splitTabbed(what, text, ["DIGEST", "SIZE", "AGE", "LABELS"]).map((r, i) => {
    const digest = r.DIGEST ?? "";
    if (!DIGEST.test(digest)) {
      throw new ParseError(`Cannot parse line ${i + 2} of ${what}: bad digest ${quoteCut(digest)}`);
    }
    const ageText = r.AGE ?? "";
    return {
      digest,
      size: parseSize(r.SIZE ?? ""),
      ageSeconds: parseAge(ageText),
      ageText,
      labels: parseLabels(r.LABELS ?? "-"),
    };
  });
}

/** `ctr image ls`: REF TYPE DIGEST SIZE PLATFORMS LABELS, space-padded. */
export function parseImageLs(text: string): ImageRow[] {
  const what = "ctr image ls";
  const cols = ["REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS", "LABELS"];
  return splitAligned(what, text, cols).map((r, i) => {
    const digest = r.DIGEST ?? "";
    if (!DIGEST.test(digest)) {
      throw new ParseError(`Cannot parse line ${i + 2} of ${what}: bad digest ${quoteCut(digest)}`);
    }
    return {
      ref: r.REF ?? "",
      type: r.TYPE ?? "",
      digest,
      size: parseSize(r.SIZE ?? ""),
      platforms: r.PLATFORMS ?? "",
      labels: parseLabels(r.LABELS ?? "-"),
    };
  });
}

/** `ctr container ls`: CONTAINER IMAGE RUNTIME, space-padded. */
export function parseContainerLs(text: string): ContainerRow[] {
  return splitAligned("ctr container ls", text, ["CONTAINER", "IMAGE", "RUNTIME"]).map((r) => ({
    id: r.CONTAINER ?? "",
    image: r.IMAGE === "-" || r.IMAGE === "" ? null : r.IMAGE ?? null,
    runtime: r.RUNTIME ?? "",
  }));
}

/** `ctr task ls`: TASK PID STATUS, space-padded. */
export function parseTaskLs(text: string): TaskRow[] {
  return splitAligned("ctr task ls", text, ["TASK", "PID", "STATUS"]).map((r) => ({
    id: r.TASK ?? "",
    pid: Number(r.PID),
    status: r.STATUS ?? "",
  }));
}

/** `ctr containers info ID`: Go-style JSON; Labels may be null and Image "". */
export function parseContainerInfo(text: string): ContainerInfo {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ParseError(
      `Cannot parse ctr containers info output as JSON: ${quoteCut(String(e), 200)}`,
    );
  }
  const o = data as Record<string, unknown> | null;
  if (o === null || typeof o !== "object" || typeof o.ID !== "string") {
    throw new ParseError(`Unexpected ctr containers info output: no "ID"`);
  }
  const labels: Record<string, string> = {};
  if (o.Labels && typeof o.Labels === "object") {
    for (const [k, v] of Object.entries(o.Labels)) labels[k] = String(v);
  }
  return {
    id: o.ID,
    image: typeof o.Image === "string" ? o.Image : "",
    labels,
    createdAt: typeof o.CreatedAt === "string" ? o.CreatedAt : "",
    updatedAt: typeof o.UpdatedAt === "string" ? o.UpdatedAt : "",
    snapshotKey: typeof o.SnapshotKey === "string" ? o.SnapshotKey : "",
    snapshotter: typeof o.Snapshotter === "string" ? o.Snapshotter : "",
    criImageRef: criImageRef(o.Extensions),
  };
}

/** The extension in which containerd's CRI plugin records a container's metadata. */
const CRI_METADATA_EXTENSION = "io.cri-containerd.container.metadata";

/**
 * `ImageRef` from CRI's metadata extension: an Any whose `value` is base64 of JSON
 * `{"Version":"v1","Metadata":{…,"ImageRef":"sha256:<config>",…}}`. null when absent or
 * unreadable (the caller then falls back to other sources).
 */
function criImageRef(extensions: unknown): string | null {
  if (extensions === null || typeof extensions !== "object") return null;
  const ext = (extensions as Record<string, unknown>)[CRI_METADATA_EXTENSION];
  if (ext === null || typeof ext !== "object") return null;
  const value = (ext as Record<string, unknown>).value;
  if (typeof value !== "string") return null;
  try {
    const bytes = Uint8Array.from(atob(value), (ch) => ch.charCodeAt(0));
    const meta = JSON.parse(new TextDecoder().decode(bytes))?.Metadata;
    return typeof meta?.ImageRef === "string" && meta.ImageRef !== "" ? meta.ImageRef : null;
  } catch {
    return null;
  }
}

/** `ctr snapshot ls`: KEY PARENT KIND, space-padded; PARENT empty for a bottom layer. */
export function parseSnapshotLs(text: string): SnapshotRow[] {
  return splitAligned("ctr snapshot ls", text, ["KEY", "PARENT", "KIND"]).map((r, i) => {
    const kind = r.KIND ?? "";
    if (!/^[A-Za-z]+$/.test(kind)) {
      throw new ParseError(
        `Cannot parse line ${i + 2} of ctr snapshot ls: bad kind ${quoteCut(kind)}`,
      );
    }
    return { key: r.KEY ?? "", parent: r.PARENT ? r.PARENT : null, kind };
  });
}

/** `ctr leases ls`: ID CREATED AT LABELS; returns the lease IDs. */
export function parseLeaseIds(text: string): string[] {
  const [header, ...body] = text.split("\n").filter((l) => l.trim() !== "");
  if (header !== undefined && !/^ID\s+CREATED AT\s+LABELS/.test(header.trim())) {
    throw new ParseError(`Unexpected header from ctr leases ls: ${quoteCut(header.trim())}`);
  }
  return body.map((l) => l.trim().split(/\s+/)[0] ?? "").filter((id) => id !== "");
}
