/**
 * The ctre(1) man page, made from the same tables as the help (cli.ts: commands, options, exit
 * codes) and the keep reasons of the policy (policy/reasons.ts), so it cannot drift from what
 * ctre parses and decides. Plain man(7) macros; `groff -man -ww -z` and `man --warnings -l`
 * render it without warnings (tests/man_page_test.ts). No I/O here.
 *
 * @module
 */
import { ABOUT, COMMAND_SPECS, type CommandSpec, EXIT_CODES, TOP_OPTIONS } from "./cli.ts";
import type { OptionTable } from "./options.ts";
import { DEFAULT_STATE_DIR } from "./permissions.ts";
import { KEEP_REASONS } from "../policy/reasons.ts";
import { VERSION } from "../core/version.ts";

/** Text as roff: backslashes and hyphens escaped, no line starting with a control character. */
export function roff(text: string): string {
  return text.split("\n").map((line) =>
    line.replaceAll("\\", "\\e").replaceAll("-", "\\-").replace(/^([.'])/, "\\&$1")
  ).join("\n");
}

/** Help paragraphs as they wrap in --help, rejoined: roff fills lines itself. */
function paragraph(text: string): string {
  return roff(text.split("\n").map((l) => l.trim()).join(" "));
}

/** An indented literal block for lines that start with two spaces in the help text. */
function about(text: string): string[] {
  const out: string[] = [];
  const prose: string[] = [];
  const flush = () => {
    if (prose.length) out.push(paragraph(prose.join("\n")), ".PP");
    prose.length = 0;
  };
  for (const line of text.split("\n")) {
    if (line.startsWith("  ")) {
      flush();
      out.push(".RS", ".EX", roff(line.trim()), ".EE", ".RE", ".PP");
    } else {
      prose.push(line);
    }
  }
  flush();
  return out.slice(0, -1);
}

function options(table: OptionTable): string[] {
  return Object.entries(table).filter(([, o]) => !o.hidden).flatMap(([name, o]) => {
    const flags = [...(o.short ? [`\\fB\\-${o.short}\\fR`] : []), `\\fB\\-\\-${roff(name)}\\fR`];
    const value = o.arg ? ` \\fI${roff(o.arg)}\\fR` : "";
    const help = o.help.join(" ").replaceAll("{default}", o.default ?? "");
    return [".TP", `${flags.join(", ")}${value}`, paragraph(help)];
  });
}

function command(c: CommandSpec): string[] {
  const arg = c.arg ? ` \\fI${roff(c.arg.name)}\\fR` : "";
  return [
    `.SS "ctre ${roff(c.name)}${arg} [\\fIoptions\\fR]"`,
    ...about(c.about),
    ...options(c.options),
    ...(c.after ? [".PP", ...about(c.after)] : []),
  ];
}

/** The man page as roff. */
export function manPage(): string {
  return [
    `.TH CTRE 1 "" "ctre ${roff(VERSION)}" "User Commands"`,
    ".SH NAME",
    `ctre \\- ${paragraph(ABOUT.replace(/\.$/, "").replace(/^Keeps/, "keep"))}`,
    ".SH SYNOPSIS",
    ".B ctre",
    ".I command",
    ".RI [ options ]",
    ".SH DESCRIPTION",
    paragraph(ABOUT),
    ".PP",
    paragraph(`Run "ctre record-image-starts" as a daemon beside containerd; run "ctre prune"
daily. Both talk to containerd only through ctr, and read and write only under their state dir.`),
    ".SH OPTIONS",
    ...options(TOP_OPTIONS),
    ".SH COMMANDS",
    ...COMMAND_SPECS.flatMap(command),
    ".SH DECISIONS",
    paragraph(`prune decides per image digest, in each namespace; the first of these that applies is
why an image is kept; otherwise it is pruned:`),
    ...Object.entries(KEEP_REASONS).flatMap(([reason, why]) => [
      ".TP",
      `.B ${roff(reason)}`,
      paragraph(why),
    ]),
    ".SH EXIT STATUS",
    ...EXIT_CODES.flatMap(([code, text]) => [".TP", `.B ${code}`, paragraph(text)]),
    ".SH FILES",
    ".TP",
    `.I ${roff(DEFAULT_STATE_DIR)}/image_starts`,
    paragraph("The usage DB: per namespace and ref, the last start and stop the recorder saw."),
    ".TP",
    `.I ${roff(DEFAULT_STATE_DIR)}/image_pulls`,
    paragraph("When each ref was last pulled (created or updated)."),
    ".TP",
    `.I ${roff(DEFAULT_STATE_DIR)}/keep`,
    paragraph("Keep patterns, one glob per line, read by every prune."),
    ".TP",
    `.I ${roff(DEFAULT_STATE_DIR)}/metrics/ctre.prom`,
    paragraph("Prometheus metrics, with --metrics."),
    ".SH ENVIRONMENT",
    ".TP",
    ".B CONTAINERD_ADDRESS",
    paragraph("The containerd socket ctr uses when --address is not given."),
    ".SH SEE ALSO",
    ".BR ctr (8),",
    ".BR containerd (8),",
    ".BR crictl (1)",
    "",
  ].join("\n");
}
