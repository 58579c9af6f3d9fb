/**
 * The command line: flags into typed options, help text, usage errors. No I/O here.
 *
 * @module
 */
import { quoteCut } from "../core/text.ts";
import { UsageError } from "../core/errors.ts";
import {
  helpRows,
  optionHelp,
  type OptionSpec,
  type OptionTable,
  parseOptions,
} from "./options.ts";
import { DEFAULT_STATE_DIR } from "./permissions.ts";
import { keepPatternProblem } from "../state/keep_file.ts";
import { parseByteSize, parseDuration } from "../core/units.ts";
import type { Budget } from "../policy/budget.ts";

/** Where containerd keeps its content and snapshots by default (for --min-free). */
export const DEFAULT_CONTAINERD_ROOT = "/var/lib/containerd";
import type { PruneOptions } from "../prune/prune.ts";
import type { RecordOptions } from "../recorder/recorder.ts";
import type { DfOptions } from "../ops/df.ts";
import type { Schedule } from "../prune/schedule.ts";

/** --jitter when not given; no `default` in the table, as scheduleOf must see it absent. */
const NO_JITTER = "0";

const COMMON = {
  address: {
    type: "string",
    short: "a",
    arg: "SOCKET",
    complete: "file",
    help: ["containerd socket (default: ctr's, or CONTAINERD_ADDRESS)"],
  },
  "state-dir": {
    type: "string",
    arg: "DIR",
    complete: "dir",
    default: DEFAULT_STATE_DIR,
    help: ["Where the usage DB lives (default {default})"],
  },
  help: { type: "boolean", short: "h", help: ["Show this help"] },
} as const satisfies OptionTable;

const METRICS = {
  type: "boolean",
  help: ["Write Prometheus metrics to <state-dir>/metrics/ctre.prom"],
} as const satisfies OptionSpec;

const PRUNE_OPTIONS = {
  force: { type: "boolean", short: "f", help: ["Remove without asking"] },
  "dry-run": {
    type: "boolean",
    help: ["Only list what would be removed; never asks, never removes"],
  },
  "min-age": {
    type: "string",
    arg: "DURATION",
    default: "14d",
    help: ["Content age an image must reach (default {default})"],
  },
  "used-within": {
    type: "string",
    arg: "DURATION",
    default: "14d",
    help: ["A start or stop recorded this recently keeps an image (default {default})"],
  },
  "double-check": {
    type: "string",
    arg: "DURATION",
    default: "15s",
    help: [
      "Re-list every 1.5 s for this long and keep what became used",
      "(default {default}; 0 turns it off)",
    ],
  },
  namespace: {
    type: "string",
    short: "n",
    arg: "NS",
    multiple: true,
    complete: "namespace",
    help: ["Only this namespace (repeatable; default all)"],
  },
  keep: {
    type: "string",
    arg: "PATTERN",
    multiple: true,
    help: ["Never remove images with a ref matching this glob (repeatable)"],
  },
  "keep-file": {
    type: "string",
    arg: "FILE",
    complete: "file",
    help: ["Keep patterns, one per line (<state-dir>/keep is always read)"],
  },
  "keep-latest": {
    type: "string",
    arg: "N",
    default: "0",
    help: ["Keep the N newest images of each repository in each namespace"],
  },
  "pin-memory": {
    type: "string",
    arg: "DURATION",
    default: "30d",
    help: [
      "Keep protecting an image seen pinned for this long after its pin",
      "label is gone (default {default}; remembered in <state-dir>/pinned)",
    ],
  },
  "no-container-cleanup": {
    type: "boolean",
    help: ["Do not remove stopped containers afterwards"],
  },
  "cleanup-kubelet-containers": {
    type: "boolean",
    help: [
      "Also remove kubelet's stopped containers and sandboxes (label",
      "io.cri-containerd.kind); by default kubelet removes its own",
    ],
  },
  "no-content-prune": {
    type: "boolean",
    help: ["Do not prune content (layer blobs no image needs) afterwards"],
  },
  "content-prune-moby": {
    type: "boolean",
    help: [
      "Run it in Docker's namespace moby too (off by default: dockerd needs",
      "the layers of the images it keeps for docker save/push/commit)",
    ],
  },
  json: {
    type: "boolean",
    help: [
      "Print one JSON document with every image, its decision and reason",
      "(with --dry-run or --force; other output goes to stderr)",
    ],
  },
  metrics: METRICS,
  "max-store-size": {
    type: "string",
    arg: "SIZE",
    help: [
      "Disk-pressure mode: only if the content store plus the snapshots",
      "(unpacked layers, writable layers) are over SIZE (e.g. 20GB), remove",
      "prunable images least recently used first until they are not",
    ],
  },
  "min-free": {
    type: "string",
    arg: "PERCENT",
    help: [
      "Disk-pressure mode: the same, until the filesystem of --root has",
      "PERCENT free (needs --allow-sys=statfs --allow-read=<root>)",
    ],
  },
  root: {
    type: "string",
    arg: "DIR",
    complete: "dir",
    help: [
      `containerd's root (default ${DEFAULT_CONTAINERD_ROOT}): --min-free measures its`,
      "filesystem, and so does the disk figure of what prune freed (needs",
      "--allow-sys=statfs --allow-read=<root>; else ctr's sizes only)",
    ],
  },
  every: {
    type: "string",
    arg: "DURATION",
    help: [
      "Repeat: one run, then sleep DURATION and run again, until SIGTERM",
      "or SIGINT (between runs: exits at once; during one: after it)",
    ],
  },
  jitter: {
    type: "string",
    arg: "DURATION",
    help: [`With --every: sleep DURATION ± this, at random (default ${NO_JITTER})`],
  },
  verbose: {
    type: "boolean",
    short: "v",
    help: [
      "Also print every image with its decision and reason as a table; its",
      "UNIQUE SIZE is what removing that image alone frees on disk (blobs and",
      "snapshots no other image or container shares)",
    ],
  },
  ...COMMON,
} as const satisfies OptionTable;

/** `ctre df`: prune's selection flags (what "reclaimable" means), --json, --root. */
const DF_OPTIONS = {
  "min-age": PRUNE_OPTIONS["min-age"],
  "used-within": PRUNE_OPTIONS["used-within"],
  namespace: PRUNE_OPTIONS.namespace,
  keep: PRUNE_OPTIONS.keep,
  "keep-file": PRUNE_OPTIONS["keep-file"],
  "keep-latest": PRUNE_OPTIONS["keep-latest"],
  "pin-memory": PRUNE_OPTIONS["pin-memory"],
  "no-content-prune": {
    type: "boolean",
    help: [
      "Count what prune --no-content-prune would free (no layer blobs of",
      "the images it keeps)",
    ],
  },
  "content-prune-moby": {
    type: "boolean",
    help: ["Count what prune --content-prune-moby would free"],
  },
  json: { type: "boolean", help: ["Print one JSON document (schemas/df.schema.json)"] },
  root: {
    type: "string",
    arg: "DIR",
    default: DEFAULT_CONTAINERD_ROOT,
    help: [
      "containerd's root, whose filesystem is shown (default",
      "{default}; needs --allow-sys=statfs --allow-read=<root>)",
    ],
  },
  ...COMMON,
} as const satisfies OptionTable;

const RECORD_OPTIONS = {
  quiet: { type: "boolean", short: "q", help: ["Print only errors"] },
  metrics: METRICS,
  "flush-interval": {
    type: "string",
    arg: "DURATION",
    default: "1s",
    help: ["Write the DB at most this often (default {default})"],
  },
  "keep-window": {
    type: "string",
    arg: "DURATION",
    default: "14d",
    help: ["Forget uses older than this (default {default})"],
  },
  ...COMMON,
} as const satisfies OptionTable;

const DOCTOR_OPTIONS = {
  json: { type: "boolean", help: ["Print the checks as JSON"] },
  ...COMMON,
} as const satisfies OptionTable;

/** status takes no socket; --address is parsed only to say so. */
const STATUS_OPTIONS = {
  json: { type: "boolean", help: ["Print as JSON"] },
  ...COMMON,
  address: { ...COMMON.address, hidden: true },
} as const satisfies OptionTable;

/** What ctre is, in one line (the help and the man page). */
export const ABOUT =
  "Keeps containerd nodes free of stale images without deleting one that is still needed.";

/** Options of "ctre" itself (only as the first argument). */
export const TOP_OPTIONS = {
  help: { type: "boolean", short: "h", help: ["Show this help"] },
  version: { type: "boolean", short: "V", help: ["Show the version"] },
} as const satisfies OptionTable;

/** A command: its help and its options, from which help, completion and the man page are made. */
export interface CommandSpec {
  name: string;
  /** Its line in the top-level help. */
  summary: string;
  /** What it does, for its own help and the man page. */
  about: string;
  options: OptionTable;
  /** A positional argument: its name in the usage line and its closed set of values. */
  arg?: { name: string; values: readonly string[] };
  /** Printed after the options. */
  after?: string;
}

/** The shells `ctre completion` writes for. */
export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = typeof SHELLS[number];

/** The exit codes every command shares. */
export const EXIT_CODES: readonly (readonly [number, string])[] = [
  [0, "done"],
  [1, "failed or aborted (nothing removed unless listed)"],
  [2, "bad usage"],
];

const PRUNE_SPEC: CommandSpec = {
  name: "prune",
  summary: "List unused, old, not recently started images; ask; remove them",
  about:
    `Lists images that no container in their namespace uses (running, created or stopped), whose
content is at least --min-age old and that the recorder has not seen started or stopped within
--used-within; re-checks for --double-check; asks; removes them; then removes stopped
containers and prunes content in each namespace, keeping every remaining image whole.`,
  options: PRUNE_OPTIONS,
  after: `DURATION: 0, or a number with s, m, h, d or w: 90s, 30m, 36h, 14d, 2w.
Exit codes: 0 done, 1 aborted or a removal failed, 2 bad usage.`,
};

const RECORD_SPEC: CommandSpec = {
  name: "record-image-starts",
  summary: "Daemon: record when containers start and stop, for prune",
  about:
    `Follows "ctr event" and records, per namespace and image ref, when a container last started
and stopped, in <state-dir>/image_starts, and when the ref was last pulled (created or
updated), in <state-dir>/image_pulls. Reconnects when containerd restarts. Stops on SIGTERM or
SIGINT after writing the DB.`,
  options: RECORD_OPTIONS,
};

const DF_SPEC: CommandSpec = {
  name: "df",
  summary: "Show what images and containers hold on disk and what prune would free",
  about: `Shows, per namespace and in total, what containerd holds on disk: the images' blobs
(CONTENT) and unpacked snapshots (SNAPSHOTS), each shared layer counted once; the containers'
writable layers (WRITABLE); content and snapshots no image nor container refers to
(UNREFERENCED: leases of pulls, leftovers; shown, never touched); and RECLAIMABLE, what
"ctre prune --force" with the same flags would free right now, content prune included. A
namespace's RECLAIMABLE is what pruning it alone frees. Lists only; removes nothing.`,
  options: DF_OPTIONS,
};

const STATUS_SPEC: CommandSpec = {
  name: "status",
  summary: "Show the usage DB and when the recorder last wrote it",
  about: `Shows the usage DB (namespace, ref, last start, last stop, age) and when the recorder last
wrote it.`,
  options: STATUS_OPTIONS,
};

const DOCTOR_SPEC: CommandSpec = {
  name: "doctor",
  summary: "Check permissions, ctr, containerd, the state dir and the recorder",
  about:
    `Prints what an operator auditing a node needs: the permissions this ctre holds and does not
hold, the ctr it runs and its version, whether containerd answers, whether the state dir is
writable, when the usage DB was last written and whether the recorder is running. Exits 1 if
anything prune needs is missing.`,
  options: DOCTOR_OPTIONS,
};

const COMPLETION_SPEC: CommandSpec = {
  name: "completion",
  summary: "Print shell completion for bash, zsh or fish",
  about: `Prints a completion script for SHELL (bash, zsh or fish): commands, options, option values
where they are a closed set, and containerd namespaces for --namespace (from "ctr namespace ls
-q" when you press Tab). scripts/install.sh installs all three; by hand:
  ctre completion bash >/etc/bash_completion.d/ctre`,
  options: { help: COMMON.help },
  arg: { name: "SHELL", values: SHELLS },
};

const MAN_SPEC: CommandSpec = {
  name: "man",
  summary: "Print the ctre(1) man page (roff)",
  about: `Prints the ctre(1) man page as roff, made from the same tables as this help:
  ctre man | man -l -`,
  options: { help: COMMON.help },
};

/** Every command, in the order the help lists them. */
export const COMMAND_SPECS: readonly CommandSpec[] = [
  PRUNE_SPEC,
  RECORD_SPEC,
  DF_SPEC,
  STATUS_SPEC,
  DOCTOR_SPEC,
  COMPLETION_SPEC,
  MAN_SPEC,
];

/** A command's help: usage line, what it does, its options from the table, what follows. */
function commandHelp(spec: CommandSpec): string {
  return [
    `Usage: ctre ${spec.name}${spec.arg ? ` ${spec.arg.name}` : ""} [options]`,
    "",
    spec.about,
    "",
    "Options:",
    ...optionHelp(spec.options),
    ...(spec.after ? ["", spec.after] : []),
  ].join("\n");
}

/** Where the top level's descriptions begin. */
const TOP_COLUMN = 25;

/** A --keep pattern, or a UsageError saying why it cannot be one. */
function keepOption(pattern: string): string {
  const problem = keepPatternProblem(pattern);
  if (problem !== null) throw new UsageError(`--keep: ${problem}`);
  return pattern;
}

export const USAGE = [
  "Usage: ctre <command> [options]",
  "",
  ABOUT,
  "",
  "Commands:",
  ...COMMAND_SPECS.flatMap((c) => helpRows(`  ${c.name}`, [c.summary], TOP_COLUMN)),
  "",
  'Run "ctre <command> --help" for a command\'s options.',
  "",
  "Options:",
  ...optionHelp(TOP_OPTIONS, TOP_COLUMN),
  "",
  `Exit codes: ${EXIT_CODES.map(([code, text]) => `${code} ${text}`).join(", ")}.`,
].join("\n");

export const PRUNE_USAGE = commandHelp(PRUNE_SPEC);
export const RECORD_USAGE = commandHelp(RECORD_SPEC);
export const DF_USAGE = commandHelp(DF_SPEC);
export const DOCTOR_USAGE = commandHelp(DOCTOR_SPEC);
export const STATUS_USAGE = commandHelp(STATUS_SPEC);
const COMPLETION_USAGE = commandHelp(COMPLETION_SPEC);
const MAN_USAGE = commandHelp(MAN_SPEC);

export type Command =
  | { kind: "help"; text: string }
  | { kind: "version" }
  | {
    kind: "prune";
    address?: string;
    prune: PruneOptions;
    keepFile?: string;
    /** --every/--jitter: repeat the run; null for one run. */
    schedule: Schedule | null;
  }
  | { kind: "df"; address?: string; df: DfOptions; json: boolean; keepFile?: string }
  | { kind: "record"; address?: string; record: RecordOptions }
  | { kind: "doctor"; address?: string; stateDir: string; json: boolean }
  | { kind: "status"; stateDir: string; json: boolean }
  | { kind: "completion"; shell: Shell }
  | { kind: "man" };

function optionalString(key: "address", value: string | undefined): { address?: string } {
  return value === undefined ? {} : { [key]: value };
}

function budgetOf(
  maxStoreSize: string | undefined,
  minFree: string | undefined,
  root: string | undefined,
): Budget | null {
  if (maxStoreSize !== undefined && minFree !== undefined) {
    throw new UsageError("Use either --max-store-size or --min-free, not both");
  }
  if (maxStoreSize !== undefined) {
    return { kind: "max-store-size", maxBytes: parseByteSize(maxStoreSize, "max-store-size") };
  }
  if (minFree === undefined) return null;
  const percent = Number(minFree.replace(/%$/, ""));
  if (!/^\d+(\.\d+)?%?$/.test(minFree) || !(percent > 0 && percent < 100)) {
    throw new UsageError(
      `Invalid percentage "${minFree}" for --min-free: use a number between 0 and 100`,
    );
  }
  return { kind: "min-free", percent, root: root ?? DEFAULT_CONTAINERD_ROOT };
}

/** A whole number of at least 0 for option `name`. */
function count(value: string, name: string): number {
  if (!/^\d{1,6}$/.test(value)) {
    throw new UsageError(
      `Invalid number ${quoteCut(value)} for --${name}: use a whole number (e.g. 2)`,
    );
  }
  return Number(value);
}

function scheduleOf(
  every: string | undefined,
  jitter: string | undefined,
  unattended: boolean,
): Schedule | null {
  if (every === undefined) {
    if (jitter !== undefined) throw new UsageError("--jitter needs --every");
    return null;
  }
  if (!unattended) {
    throw new UsageError("--every needs --force or --dry-run (a repeating prune cannot ask)");
  }
  const s = {
    every: parseDuration(every, "every"),
    jitter: parseDuration(jitter ?? NO_JITTER, "jitter"),
  };
  if (s.every <= 0) throw new UsageError("--every must be more than 0");
  if (s.jitter > s.every) throw new UsageError("--jitter must not be more than --every");
  return s;
}

/** Whether `arg` is option `name` of `table`, long or short. */
function isOption(arg: string, table: OptionTable, name: string): boolean {
  const short = table[name]?.short;
  return arg === `--${name}` || (short !== undefined && arg === `-${short}`);
}

/** `ctre df`'s options: prune's selection, as a dry run that never asks. */
function dfCommand(args: string[]): Command {
  const v = parseOptions(args, DF_OPTIONS);
  if (v.help) return { kind: "help", text: DF_USAGE };
  const prune: PruneOptions = {
    mode: "dry-run",
    minAge: parseDuration(v["min-age"], "min-age"),
    usedWithin: parseDuration(v["used-within"], "used-within"),
    doubleCheck: 0,
    stateDir: v["state-dir"],
    namespaces: v.namespace,
    keep: v.keep,
    containerCleanup: false,
    keepLatest: count(v["keep-latest"], "keep-latest"),
    pinMemory: parseDuration(v["pin-memory"], "pin-memory"),
    contentPrune: !v["no-content-prune"],
    contentPruneMoby: v["content-prune-moby"],
    json: v.json,
    verbose: false,
    metrics: false,
    budget: null,
  };
  return {
    kind: "df",
    df: { prune, root: v.root },
    json: v.json,
    ...optionalString("address", v.address),
    ...(v["keep-file"] === undefined ? {} : { keepFile: v["keep-file"] }),
  };
}

/** Parses the arguments after the program name. Throws UsageError. */
export function parseCommand(argv: string[]): Command {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || isOption(command, TOP_OPTIONS, "help")) {
    return { kind: "help", text: USAGE };
  }
  if (isOption(command, TOP_OPTIONS, "version")) return { kind: "version" };
  if (command === "prune") {
    const v = parseOptions(rest, PRUNE_OPTIONS);
    if (v.help) return { kind: "help", text: PRUNE_USAGE };
    if (v.force && v["dry-run"]) throw new UsageError("Use either --force or --dry-run, not both");
    if (v.json && !v.force && !v["dry-run"]) {
      throw new UsageError("--json needs --dry-run or --force (it cannot ask)");
    }
    const schedule = scheduleOf(v.every, v.jitter, v.force || v["dry-run"]);
    const prune: PruneOptions = {
      mode: v["dry-run"] ? "dry-run" : v.force ? "force" : "ask",
      minAge: parseDuration(v["min-age"], "min-age"),
      usedWithin: parseDuration(v["used-within"], "used-within"),
      doubleCheck: parseDuration(v["double-check"], "double-check"),
      stateDir: v["state-dir"],
      namespaces: v.namespace,
      keep: v.keep.map(keepOption),
      containerCleanup: !v["no-container-cleanup"],
      cleanupKubeletContainers: v["cleanup-kubelet-containers"],
      keepLatest: count(v["keep-latest"], "keep-latest"),
      pinMemory: parseDuration(v["pin-memory"], "pin-memory"),
      contentPrune: !v["no-content-prune"],
      contentPruneMoby: v["content-prune-moby"],
      json: v.json,
      verbose: v.verbose,
      metrics: v.metrics,
      budget: budgetOf(v["max-store-size"], v["min-free"], v.root),
      root: v.root ?? DEFAULT_CONTAINERD_ROOT,
    };
    return {
      kind: "prune",
      prune,
      schedule,
      ...optionalString("address", v.address),
      ...(v["keep-file"] === undefined ? {} : { keepFile: v["keep-file"] }),
    };
  }
  if (command === "df") return dfCommand(rest);
  if (command === "record-image-starts") {
    const v = parseOptions(rest, RECORD_OPTIONS);
    if (v.help) return { kind: "help", text: RECORD_USAGE };
    const flushInterval = parseDuration(v["flush-interval"], "flush-interval");
    if (flushInterval <= 0) throw new UsageError("--flush-interval must be more than 0");
    return {
      kind: "record",
      ...optionalString("address", v.address),
      record: {
        stateDir: v["state-dir"],
        quiet: v.quiet,
        flushInterval,
        keepWindow: parseDuration(v["keep-window"], "keep-window"),
        metrics: v.metrics,
      },
    };
  }
  if (command === "doctor") {
    const v = parseOptions(rest, DOCTOR_OPTIONS);
    if (v.help) return { kind: "help", text: DOCTOR_USAGE };
    return {
      kind: "doctor",
      stateDir: v["state-dir"],
      json: v.json,
      ...optionalString("address", v.address),
    };
  }
  if (command === "status") {
    const v = parseOptions(rest, STATUS_OPTIONS);
    if (v.help) return { kind: "help", text: STATUS_USAGE };
    if (v.address !== undefined) throw new UsageError(`"ctre status" does not use --address`);
    return { kind: "status", stateDir: v["state-dir"], json: v.json };
  }
  if (command === "completion") return parseCompletion(rest);
  if (command === "man") return parseMan(rest);
  throw new UsageError(`Unknown command ${quoteCut(command)}`);
}

function parseMan(rest: string[]): Command {
  return parseOptions(rest, MAN_SPEC.options).help
    ? { kind: "help", text: MAN_USAGE }
    : { kind: "man" };
}

/** `ctre completion SHELL`: the shell is the one positional argument. */
function parseCompletion(rest: string[]): Command {
  const at = rest.findIndex((a) => !a.startsWith("-"));
  const shell = at < 0 ? undefined : rest[at];
  const v = parseOptions(rest.filter((_, i) => i !== at), COMPLETION_SPEC.options);
  if (v.help) return { kind: "help", text: COMPLETION_USAGE };
  const names = SHELLS.join(", ");
  if (shell === undefined) throw new UsageError(`"ctre completion" needs a shell: ${names}`);
  const known = SHELLS.find((s) => s === shell);
  if (known === undefined) throw new UsageError(`Unknown shell ${quoteCut(shell)} (${names})`);
  return { kind: "completion", shell: known };
}
