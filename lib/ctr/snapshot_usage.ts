/**
 * The parser of `ctr snapshot usage -b` (run by the gateway, lib/ctr/ctr_gateway.ts): what each
 * snapshot of one snapshotter holds on disk, in bytes. One process lists every snapshot of the
 * namespace; containerd stores a committed snapshot's usage when it is committed and walks only
 * active ones (a container's writable layer). The same `KEY SIZE INODES` table from 1.6 to 2.x
 * (tests/testdata/ctr-*\/disk_snapshot_usage_b.txt); without `-b` SIZE is rounded to one decimal
 * of a binary unit, so the gateway always passes `-b`.
 *
 * @module
 */
import { ParseError } from "../core/errors.ts";

/** Parses `ctr snapshot usage -b`: snapshot key → bytes. */
export function parseSnapshotUsage(text: string): Map<string, number> {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const [header, ...body] = lines;
  if (header !== undefined && !/^KEY\s+SIZE\s+INODES$/.test(header.trim())) {
    throw new ParseError(`Unexpected header from ctr snapshot usage: "${header.trim()}"`);
  }
  const out = new Map<string, number>();
  for (const [i, line] of body.entries()) {
    const cells = line.trim().split(/\s+/);
    const size = cells.length === 3 ? cells[1]! : "";
    if (!/^\d+$/.test(size)) {
      throw new ParseError(
        `Cannot parse line ${
          i + 2
        } of ctr snapshot usage: "${line.trim()}" (need KEY BYTES INODES)`,
      );
    }
    out.set(cells[0]!, Number(size));
  }
  return out;
}
