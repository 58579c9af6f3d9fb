/**
 * `ctr snapshot usage -b`: what each snapshot of one snapshotter holds on disk, in bytes. One
 * process lists every snapshot of the namespace; containerd stores a committed snapshot's usage
 * when it is committed and walks only active ones (a container's writable layer). The same
 * `KEY SIZE INODES` table from 1.6 to 2.x (tests/testdata/ctr-*\/disk_snapshot_usage_b.txt);
 * without `-b` SIZE is rounded to one decimal of a binary unit, so ctre always passes `-b`.
 *
 * @module
 */
import { ParseError } from "../core/errors.ts";
import { type Ctr, ctrOk } from "./runner.ts";

/** The argv of the usage listing of `snapshotter` in `ns` ("" : ctr's default snapshotter). */
export function snapshotUsageArgs(ns: string, snapshotter: string): string[] {
  // Flags before the subcommand's arguments: ctr 2.x stops reading flags at the first argument.
  const which = snapshotter === "" ? [] : ["--snapshotter", snapshotter];
  return ["-n", ns, "snapshot", ...which, "usage", "-b"];
}

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

/** What every snapshot of `snapshotter` in `ns` holds on disk: key → bytes (one ctr process). */
export async function snapshotUsage(
  ctr: Ctr,
  ns: string,
  snapshotter: string,
): Promise<Map<string, number>> {
  return parseSnapshotUsage(await ctrOk(ctr, snapshotUsageArgs(ns, snapshotter)));
}
