/**
 * Splitting ctr's tabwriter tables into rows of named cells. `content ls` pads with tabs; the
 * other listings pad with spaces and have cells that contain spaces (`25.6 MiB`), so their
 * columns are found by the header's offsets, counted in characters.
 *
 * @module
 */
import { quoteCut } from "../core/text.ts";
import { ParseError } from "../core/errors.ts";

export type Row = Record<string, string>;

/** A surrogate: a code point outside the BMP takes two UTF-16 code units, a pair of these. */
const SURROGATE = /[\ud800-\udfff]/;

function lines(text: string): string[] {
  const all = text.split("\n");
  if (all.at(-1) === "") all.pop();
  return all;
}

function checkHeader(what: string, header: string | undefined, expected: string[]): string[] {
  const names = header?.trim().split(/\s+/) ?? [];
  if (names.join(" ") !== expected.join(" ")) {
    throw new ParseError(
      `Unexpected header from ${what}: ${quoteCut(header?.trim() ?? "")} (expected "${
        expected.join(" ")
      }")`,
    );
  }
  return names;
}

/** Rows of a table whose cells are separated by one or more tabs (`ctr content ls`). */
export function splitTabbed(what: string, text: string, expected: string[]): Row[] {
  const [header, ...body] = lines(text);
  const names = checkHeader(what, header, expected);
  return body.map((line, i) => {
    const cells = line.replace(/\t+$/, "").split(/\t+/);
    if (cells.length !== names.length) {
      throw new ParseError(
        `Cannot parse line ${i + 2} of ${what}: expected ${names.length} tab-separated cells, ` +
          `got ${cells.length}: ${quoteCut(line)}`,
      );
    }
    const row: Row = {};
    for (let j = 0; j < names.length; j++) row[names[j]!] = cells[j] ?? "";
    return row;
  });
}

/**
 * Rows of a space-padded table (`ctr image ls`, `ctr container ls`, `ctr task ls`): each
 * column starts where its header word starts.
 */
export function splitAligned(what: string, text: string, expected: string[]): Row[] {
  const [header, ...body] = lines(text);
  const names = checkHeader(what, header, expected);
  const head = Array.from(header ?? "");
  const starts: number[] = [];
  let at = 0;
  for (const name of names) {
    // Header words are separated by at least one space, so search from the previous end.
    while (at < head.length && head[at] === " ") at++;
    starts.push(at);
    at += Array.from(name).length;
  }
  return body.map((line, i) => {
    // Offsets count characters (code points): index the string itself unless a character takes
    // two code units (1,000 image rows: ~20 ms less CPU than splitting every line).
    const chars: string | string[] = SURROGATE.test(line) ? Array.from(line) : line;
    const row: Row = {};
    names.forEach((name, j) => {
      const start = starts[j] ?? 0;
      const end = j + 1 < starts.length ? starts[j + 1] ?? chars.length : chars.length;
      if (start > 0 && chars[start - 1] !== undefined && chars[start - 1] !== " ") {
        throw new ParseError(
          `Cannot parse line ${i + 2} of ${what}: column ${name} does not start at ` +
            `character ${start + 1}: ${quoteCut(line)}`,
        );
      }
      const text = chars.slice(start, end);
      row[name] = (typeof text === "string" ? text : text.join("")).trim();
    });
    if (!row[names[0] ?? ""]) {
      throw new ParseError(
        `Cannot parse line ${i + 2} of ${what}: empty ${names[0]}: ${quoteCut(line)}`,
      );
    }
    return row;
  });
}

/**
 * Labels from a LABELS cell: `k=v,k2=v2`, `-` for none. A value may itself contain commas
 * (`containerd.io/distribution.source.docker.io=library/a,library/b`): a comma-separated token
 * without `=` belongs to the previous value.
 */
export function parseLabels(cell: string): Map<string, string> {
  const labels = new Map<string, string>();
  if (cell === "-" || cell === "") return labels;
  let last: string | undefined;
  for (const token of cell.split(",")) {
    const eq = token.indexOf("=");
    if (eq > 0) {
      last = token.slice(0, eq);
      labels.set(last, token.slice(eq + 1));
    } else if (last !== undefined) {
      labels.set(last, `${labels.get(last)},${token}`);
    } else {
      throw new ParseError(`Cannot parse labels ${quoteCut(cell)}`);
    }
  }
  return labels;
}
