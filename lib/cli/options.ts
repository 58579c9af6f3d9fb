/**
 * Command-line options declared once: each entry of a table gives the help line and drives the
 * parser, so a flag cannot be documented one way and parsed another (as cliffy declares them).
 * The parser follows node:util parseArgs's strict rules (long and short names, `--name=value`,
 * `-nVALUE`, grouped short booleans `-fv`, `--` ends options) and reports problems as
 * UsageError itself. No I/O here.
 *
 * @module
 */
import { quoteCut } from "../core/text.ts";
import { UsageError } from "../core/errors.ts";

/** One option: how it parses and how its help reads. */
export interface OptionSpec {
  type: "boolean" | "string";
  /** One letter: `-x`. */
  short?: string;
  /** The value's name in the help (`--min-age DURATION`); string options only. */
  arg?: string;
  /** May be given more than once; the values are collected in order. */
  multiple?: boolean;
  /** Used when the option is absent; `{default}` in the help lines shows it. */
  default?: string;
  /** Help lines, wrapped by hand; the first beside the flag, the rest under it. */
  help: readonly string[];
  /** Parsed but not listed in the help (kept only to give a clearer error). */
  hidden?: boolean;
  /**
   * What a shell completes for the value (lib/cli/completion.ts): file names, directories,
   * containerd's namespaces (`ctr namespace ls -q`), or a closed set; none: nothing to offer.
   */
  complete?: "file" | "dir" | "namespace" | readonly string[];
}

export type OptionTable = Readonly<Record<string, OptionSpec>>;

/** The parsed values: booleans are false when absent, defaults filled in. */
export type OptionValues<T extends OptionTable> = {
  -readonly [K in keyof T]: T[K]["type"] extends "boolean" ? boolean
    : T[K]["multiple"] extends true ? string[]
    : T[K]["default"] extends string ? string
    : string | undefined;
};

/** Where the help text begins beside a flag. */
const OPTION_COLUMN = 29;

/** Lays out `first` then `help` lines at `column`; a too-long `first` puts help on the next line. */
export function helpRows(first: string, help: readonly string[], column: number): string[] {
  const pad = " ".repeat(column);
  const [line, ...more] = help;
  const rows = first.length < column
    ? [first.padEnd(column) + (line ?? "")]
    : [first, ...(line === undefined ? [] : [pad + line])];
  return [...rows, ...more.map((l) => pad + l)].map((r) => r.trimEnd());
}

/** The "Options:" lines of a table, in its order. */
export function optionHelp(table: OptionTable, column = OPTION_COLUMN): string[] {
  return Object.entries(table).filter(([, o]) => !o.hidden).flatMap(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : "    "}--${name}${o.arg ? ` ${o.arg}` : ""}`;
    const help = o.help.map((l) => l.replaceAll("{default}", o.default ?? ""));
    return helpRows(`  ${flag}`, help, column);
  });
}

/**
 * Parses `args` against `table`. Every option problem is reported before a stray positional,
 * as node:util parseArgs does. Throws UsageError.
 */
export function parseOptions<T extends OptionTable>(args: string[], table: T): OptionValues<T> {
  const byShort = new Map<string, string>();
  for (const [name, o] of Object.entries(table)) if (o.short) byShort.set(o.short, name);
  const seen = new Map<string, string[]>();
  const flags = new Set<string>();
  const positionals: string[] = [];
  const queue = [...args];

  const take = (name: string, raw: string, inline: string | undefined) => {
    const o = Object.hasOwn(table, name) ? table[name] : undefined;
    if (o === undefined) throw new UsageError(`Unknown option ${quoteCut(raw)}`);
    const flag = `--${name}`;
    if (o.type === "boolean") {
      if (inline !== undefined) {
        throw new UsageError(`Option ${quoteCut(flag)} does not take a value`);
      }
      flags.add(name);
      return;
    }
    let value = inline;
    if (value === undefined) {
      value = queue.shift();
      if (value === undefined) throw new UsageError(`Option ${quoteCut(flag)} needs a value`);
      if (value.length > 1 && value.startsWith("-")) {
        throw new UsageError(
          `Option ${
            quoteCut(flag)
          } needs a value (write ${flag}=VALUE for a value that starts with "-")`,
        );
      }
    }
    seen.set(name, o.multiple ? [...(seen.get(name) ?? []), value] : [value]);
  };

  while (queue.length > 0) {
    const arg = queue.shift()!;
    if (arg === "--") {
      positionals.push(...queue.splice(0));
    } else if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const raw = eq < 0 ? arg : arg.slice(0, eq);
      take(raw.slice(2), raw, eq < 0 ? undefined : arg.slice(eq + 1));
    } else if (arg.startsWith("-") && arg.length > 1) {
      // -n, -nVALUE (a string option takes the rest), -fv (booleans grouped).
      for (let i = 1; i < arg.length; i++) {
        const letter = arg[i]!;
        const name = byShort.get(letter);
        const rest = arg.slice(i + 1);
        if (name !== undefined && table[name]?.type === "string" && rest !== "") {
          take(name, `-${letter}`, rest);
          break;
        }
        take(name ?? "", `-${letter}`, undefined);
      }
    } else {
      positionals.push(arg);
    }
  }
  if (positionals.length > 0) {
    throw new UsageError(`Unexpected argument ${quoteCut(positionals[0]!)}`);
  }

  const values: Record<string, boolean | string | string[] | undefined> = {};
  for (const [name, o] of Object.entries(table)) {
    const given = seen.get(name);
    if (o.type === "boolean") values[name] = flags.has(name);
    else if (o.multiple) values[name] = given ?? [];
    else values[name] = given?.at(-1) ?? o.default;
  }
  return values as OptionValues<T>;
}
