/**
 * Small text helpers shared by the human-readable outputs (prune --verbose, status).
 *
 * @module
 */

/** Unix seconds as ISO 8601 without fraction (`2026-11-27T17:12:41Z`), `-` for null. */
export function isoTime(t: number | null): string {
  return t === null ? "-" : new Date(t * 1000).toISOString().replace(/\.\d+Z$/, "Z");
}

/** Rows as aligned columns, two spaces apart, without trailing spaces. */
export function alignColumns(rows: string[][]): string[] {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd());
}
