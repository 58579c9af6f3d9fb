/**
 * The command line: flags into typed options, help text, usage errors. No I/O here.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./errors.ts";
import { DEFAULT_STATE_DIR } from "./permissions.ts";
import { parseByteSize, parseDuration } from "./units.ts";
import type { Budget } from "./budget.ts";

/** Where containerd keeps its content and snapshots by default (for --min-free). */
export const DEFAULT_CONTAINERD_ROOT = "/var/lib/containerd";
import type { PruneOptions } from "./prune.ts";
import type { RecordOptions } from "./recorder.ts";
import type { Schedule } from "./schedule.ts";

export const USAGE = `Usage: ctre <command> [options]

Keeps containerd nodes free of stale images without deleting one that is still needed.

Commands:
  prune                  List unused, old, not recently started images; ask; remove them
  record-image-starts    Daemon: record when containers start and stop, for prune
  status                 Show the usage DB and when the recorder last wrote it
  doctor                 Check permissions, ctr, containerd, the state dir and the recorder

Run "ctre <command> --help" for a command's options.

Options:
  -h, --help             Show this help
  -V, --version          Show the version

Exit codes: 0 done, 1 failed or aborted (nothing removed unless listed), 2 bad usage.`;

export const PRUNE_USAGE = `Usage: ctre prune [options]

Lists images that no container in their namespace uses (running, created or stopped), whose
content is at least --min-age old and that the recorder has not seen started or stopped within
--used-within; re-checks for --double-check; asks; removes them; then removes stopped
containers and runs "ctr content prune references" in each namespace.

Options:
  -f, --force                Remove without asking
      --dry-run              Only list what would be removed; never asks, never removes
      --min-age DURATION     Content age an image must reach (default 14d)
      --used-within DURATION A start or stop recorded this recently keeps an image (default 14d)
      --double-check DURATION
                             Re-list every 1.5 s for this long and keep what became used
                             (default 15s; 0 turns it off)
  -n, --namespace NS         Only this namespace (repeatable; default all)
      --keep PATTERN         Never remove images with a ref matching this glob (repeatable)
      --keep-file FILE       Keep patterns, one per line (<state-dir>/keep is always read)
      --keep-latest N        Keep the N newest images of each repository in each namespace
      --pin-memory DURATION  Keep protecting an image seen pinned for this long after its pin
                             label is gone (default 30d; remembered in <state-dir>/pinned)
      --no-container-cleanup Do not remove stopped containers afterwards
      --cleanup-kubelet-containers
                             Also remove kubelet's stopped containers and sandboxes (label
                             io.cri-containerd.kind); by default kubelet removes its own
      --no-content-prune     Do not run "ctr content prune references" afterwards
      --content-prune-moby   Run it in Docker's namespace moby too (off by default: dockerd needs
                             the layers of the images it keeps for docker save/push/commit)
      --json                 Print one JSON document with every image, its decision and reason
                             (with --dry-run or --force; other output goes to stderr)
      --metrics              Write Prometheus metrics to <state-dir>/metrics/ctre.prom
      --max-store-size SIZE  Disk-pressure mode: only if the content store is over SIZE (e.g.
                             20GB), remove prunable images least recently used first until it is not
      --min-free PERCENT     Disk-pressure mode: the same, until the filesystem of --root has
                             PERCENT free (needs --allow-sys=statfs --allow-read=<root>)
      --root DIR             containerd's root for --min-free (default /var/lib/containerd)
      --every DURATION       Repeat: one run, then sleep DURATION and run again, until SIGTERM
                             or SIGINT (between runs: exits at once; during one: after it)
      --jitter DURATION      With --every: sleep DURATION ± this, at random (default 0)
  -v, --verbose              Also print every image with its decision and reason as a table
  -a, --address SOCKET       containerd socket (default: ctr's, or CONTAINERD_ADDRESS)
      --state-dir DIR        Where the usage DB lives (default ${DEFAULT_STATE_DIR})
  -h, --help                 Show this help

DURATION: 0, or a number with s, m, h, d or w: 90s, 30m, 36h, 14d, 2w.
Exit codes: 0 done, 1 aborted or a removal failed, 2 bad usage.`;

export const RECORD_USAGE = `Usage: ctre record-image-starts [options]

Follows "ctr event" and records, per namespace and image ref, when a container last started
and stopped, in <state-dir>/image_starts, and when the ref was last pulled (created or
updated), in <state-dir>/image_pulls. Reconnects when containerd restarts. Stops on SIGTERM or
SIGINT after writing the DB.

Options:
  -q, --quiet                Print only errors
      --metrics              Write Prometheus metrics to <state-dir>/metrics/ctre.prom
      --flush-interval DURATION
                             Write the DB at most this often (default 1s)
      --keep-window DURATION Forget uses older than this (default 14d)
  -a, --address SOCKET       containerd socket (default: ctr's, or CONTAINERD_ADDRESS)
      --state-dir DIR        Where the usage DB lives (default ${DEFAULT_STATE_DIR})
  -h, --help                 Show this help`;

export const DOCTOR_USAGE = `Usage: ctre doctor [options]

Prints what an operator auditing a node needs: the permissions this ctre holds and does not
hold, the ctr it runs and its version, whether containerd answers, whether the state dir is
writable, when the usage DB was last written and whether the recorder is running. Exits 1 if
anything prune needs is missing.

Options:
      --json                 Print the checks as JSON
  -a, --address SOCKET       containerd socket (default: ctr's, or CONTAINERD_ADDRESS)
      --state-dir DIR        Where the usage DB lives (default ${DEFAULT_STATE_DIR})
  -h, --help                 Show this help`;

export const STATUS_USAGE = `Usage: ctre status [options]

Shows the usage DB (namespace, ref, last start, last stop, age) and when the recorder last
wrote it.

Options:
      --json                 Print as JSON
      --state-dir DIR        Where the usage DB lives (default ${DEFAULT_STATE_DIR})
  -h, --help                 Show this help`;

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
  | { kind: "record"; address?: string; record: RecordOptions }
  | { kind: "doctor"; address?: string; stateDir: string; json: boolean }
  | { kind: "status"; stateDir: string; json: boolean };

const COMMON = {
  address: { type: "string", short: "a" },
  "state-dir": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function parse<O extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: O) {
  try {
    const { values, positionals } = parseArgs({
      args,
      options,
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length > 0) throw new UsageError(`Unexpected argument "${positionals[0]}"`);
    return values;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    const unknown = /Unknown option '([^']+)'/.exec(msg);
    if (unknown) throw new UsageError(`Unknown option "${unknown[1]}"`);
    // node:util's texts name an option as '-n, --namespace <value>' or '--min-age <value>'.
    const name = (quoted: string) => quoted.replace(/ <value>$/, "").split(", ").at(-1);
    const missing = /Option '([^']+)' argument missing/.exec(msg);
    if (missing) throw new UsageError(`Option "${name(missing[1]!)}" needs a value`);
    const ambiguous = /Option '([^']+)' argument is ambiguous/.exec(msg);
    if (ambiguous) {
      const flag = name(ambiguous[1]!);
      throw new UsageError(
        `Option "${flag}" needs a value (write ${flag}=VALUE for a value that starts with "-")`,
      );
    }
    const noValue = /Option '([^']+)' does not take an argument/.exec(msg);
    if (noValue) throw new UsageError(`Option "${name(noValue[1]!)}" does not take a value`);
    throw new UsageError(msg.split(".")[0] ?? msg);
  }
}

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
  if (root !== undefined && minFree === undefined) throw new UsageError("--root needs --min-free");
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
    throw new UsageError(`Invalid number "${value}" for --${name}: use a whole number (e.g. 2)`);
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
    jitter: parseDuration(jitter ?? "0", "jitter"),
  };
  if (s.every <= 0) throw new UsageError("--every must be more than 0");
  if (s.jitter > s.every) throw new UsageError("--jitter must not be more than --every");
  return s;
}

/** Parses the arguments after the program name. Throws UsageError. */
export function parseCommand(argv: string[]): Command {
  const [command, ...rest] = argv;
  if (command === undefined || command === "-h" || command === "--help" || command === "help") {
    return { kind: "help", text: USAGE };
  }
  if (command === "-V" || command === "--version") return { kind: "version" };
  if (command === "prune") {
    const v = parse(rest, {
      ...COMMON,
      force: { type: "boolean", short: "f" },
      "dry-run": { type: "boolean" },
      "min-age": { type: "string" },
      "used-within": { type: "string" },
      "double-check": { type: "string" },
      namespace: { type: "string", short: "n", multiple: true },
      keep: { type: "string", multiple: true },
      "keep-file": { type: "string" },
      "no-container-cleanup": { type: "boolean" },
      "cleanup-kubelet-containers": { type: "boolean" },
      "keep-latest": { type: "string" },
      "pin-memory": { type: "string" },
      "no-content-prune": { type: "boolean" },
      "content-prune-moby": { type: "boolean" },
      json: { type: "boolean" },
      verbose: { type: "boolean", short: "v" },
      metrics: { type: "boolean" },
      "max-store-size": { type: "string" },
      "min-free": { type: "string" },
      root: { type: "string" },
      every: { type: "string" },
      jitter: { type: "string" },
    });
    if (v.help) return { kind: "help", text: PRUNE_USAGE };
    if (v.force && v["dry-run"]) throw new UsageError("Use either --force or --dry-run, not both");
    if (v.json && !v.force && !v["dry-run"]) {
      throw new UsageError("--json needs --dry-run or --force (it cannot ask)");
    }
    const schedule = scheduleOf(v.every, v.jitter, Boolean(v.force || v["dry-run"]));
    const prune: PruneOptions = {
      mode: v["dry-run"] ? "dry-run" : v.force ? "force" : "ask",
      minAge: parseDuration(v["min-age"] ?? "14d", "min-age"),
      usedWithin: parseDuration(v["used-within"] ?? "14d", "used-within"),
      doubleCheck: parseDuration(v["double-check"] ?? "15s", "double-check"),
      stateDir: v["state-dir"] ?? DEFAULT_STATE_DIR,
      namespaces: v.namespace ?? [],
      keep: v.keep ?? [],
      containerCleanup: !v["no-container-cleanup"],
      cleanupKubeletContainers: v["cleanup-kubelet-containers"] ?? false,
      keepLatest: count(v["keep-latest"] ?? "0", "keep-latest"),
      pinMemory: parseDuration(v["pin-memory"] ?? "30d", "pin-memory"),
      contentPrune: !v["no-content-prune"],
      contentPruneMoby: v["content-prune-moby"] ?? false,
      json: v.json ?? false,
      verbose: v.verbose ?? false,
      metrics: v.metrics ?? false,
      budget: budgetOf(v["max-store-size"], v["min-free"], v.root),
    };
    return {
      kind: "prune",
      prune,
      schedule,
      ...optionalString("address", v.address),
      ...(v["keep-file"] === undefined ? {} : { keepFile: v["keep-file"] }),
    };
  }
  if (command === "record-image-starts") {
    const v = parse(rest, {
      ...COMMON,
      quiet: { type: "boolean", short: "q" },
      "flush-interval": { type: "string" },
      "keep-window": { type: "string" },
      metrics: { type: "boolean" },
    });
    if (v.help) return { kind: "help", text: RECORD_USAGE };
    const flushInterval = parseDuration(v["flush-interval"] ?? "1s", "flush-interval");
    if (flushInterval <= 0) throw new UsageError("--flush-interval must be more than 0");
    return {
      kind: "record",
      ...optionalString("address", v.address),
      record: {
        stateDir: v["state-dir"] ?? DEFAULT_STATE_DIR,
        quiet: v.quiet ?? false,
        flushInterval,
        keepWindow: parseDuration(v["keep-window"] ?? "14d", "keep-window"),
        metrics: v.metrics ?? false,
      },
    };
  }
  if (command === "doctor" || command === "status") {
    const v = parse(rest, { ...COMMON, json: { type: "boolean" } });
    if (v.help) return { kind: "help", text: command === "doctor" ? DOCTOR_USAGE : STATUS_USAGE };
    const stateDir = v["state-dir"] ?? DEFAULT_STATE_DIR;
    const json = v.json ?? false;
    if (command === "status") {
      if (v.address !== undefined) throw new UsageError(`"ctre status" does not use --address`);
      return { kind: "status", stateDir, json };
    }
    return { kind: "doctor", stateDir, json, ...optionalString("address", v.address) };
  }
  throw new UsageError(`Unknown command "${command}"`);
}
