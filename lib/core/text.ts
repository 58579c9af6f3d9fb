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

/** Characters escaped by {@linkcode quoteCut}: C0/C1 controls, DEL, invisible and bidi marks. */
// deno-lint-ignore no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff"\\]/g;

/**
 * `text` quoted for a terminal or the journal: `"` and `\` escaped, control and invisible
 * characters as `\uXXXX`, and cut once the quoted text reaches `max` characters, the full
 * length said
 * (`"abc"… (2000000 characters)`). For echoing input that may be binary junk.
 */
export function quoteCut(text: string, max = 80): string {
  let body = "";
  let used = 0;
  for (const c of text) {
    if (body.length >= max) break;
    used += c.length;
    body += c.replace(
      UNSAFE,
      (u) =>
        u === '"'
          ? '\\"'
          : u === "\\"
          ? "\\\\"
          : `\\u${u.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
  }
  return `"${body}"${used < text.length ? `… (${text.length} characters)` : ""}`;
}
