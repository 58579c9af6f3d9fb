/**
 * The command line as one table: argv → the parsed command, or the exact error text. Every
 * error row is also run through the real entry point (main.ts, under the shipped permissions),
 * which must print `ctre: <text>` and the usage hint on stderr and exit 2.
 */
import assert from "node:assert/strict";
import { type Command, DF_USAGE, parseCommand, PRUNE_USAGE, USAGE } from "../lib/cli/cli.ts";
import { UsageError } from "../lib/core/errors.ts";
import type { PruneOptions } from "../lib/prune/prune.ts";
import { runCtre, tempStateDir } from "./support/cli.ts";

const DAY = 86400;
const SPOOL = "/var/spool/ctre";

const PRUNE: PruneOptions = {
  mode: "ask",
  minAge: 14 * DAY,
  usedWithin: 14 * DAY,
  doubleCheck: 15,
  stateDir: SPOOL,
  namespaces: [],
  keep: [],
  containerCleanup: true,
  cleanupKubeletContainers: false,
  keepLatest: 0,
  pinMemory: 30 * DAY,
  contentPrune: true,
  contentPruneMoby: false,
  json: false,
  verbose: false,
  metrics: false,
  budget: null,
  root: "/var/lib/containerd",
};

const prune = (over: Partial<PruneOptions> = {}, extra: Partial<Command> = {}): Command =>
  ({ kind: "prune", prune: { ...PRUNE, ...over }, schedule: null, ...extra }) as Command;

/** `ctre df`: prune's selection as a dry run that never asks and cleans nothing. */
const df = (over: Partial<PruneOptions> = {}, root = "/var/lib/containerd", json = false) => {
  const { cleanupKubeletContainers: _k, root: _r, ...selection } = PRUNE;
  return {
    kind: "df",
    df: {
      prune: {
        ...selection,
        mode: "dry-run",
        doubleCheck: 0,
        containerCleanup: false,
        json,
        ...over,
      },
      root,
    },
    json,
  } as Command;
};

const RECORD = {
  stateDir: SPOOL,
  quiet: false,
  flushInterval: 1,
  keepWindow: 14 * DAY,
  metrics: false,
};

const DURATION_HELP =
  "use a number with a unit s, m, h, d or w (e.g. 90s, 30m, 36h, 14d, 2w), or 0";

/** argv → the command, or the exact error text (a usage error: exit 2). */
const TABLE: [string[], Command | string][] = [
  // Top level.
  [[], { kind: "help", text: USAGE }],
  [["-h"], { kind: "help", text: USAGE }],
  [["--help"], { kind: "help", text: USAGE }],
  [["help"], { kind: "help", text: USAGE }],
  [["-V"], { kind: "version" }],
  [["--version"], { kind: "version" }],
  [["frobnicate"], 'Unknown command "frobnicate"'],
  // completion and man.
  [["completion", "bash"], { kind: "completion", shell: "bash" }],
  [["completion", "zsh"], { kind: "completion", shell: "zsh" }],
  [["completion", "fish"], { kind: "completion", shell: "fish" }],
  [["completion"], '"ctre completion" needs a shell: bash, zsh, fish'],
  [["completion", "tcsh"], 'Unknown shell "tcsh" (bash, zsh, fish)'],
  [["completion", "bash", "--json"], 'Unknown option "--json"'],
  [["man"], { kind: "man" }],
  [["man", "extra"], 'Unexpected argument "extra"'],
  [["--frob"], 'Unknown command "--frob"'],
  // prune: every flag.
  [["prune"], prune()],
  [["prune", "-h"], { kind: "help", text: PRUNE_USAGE }],
  [["prune", "--help"], { kind: "help", text: PRUNE_USAGE }],
  [["prune", "-f"], prune({ mode: "force" })],
  [["prune", "--force"], prune({ mode: "force" })],
  [["prune", "--dry-run"], prune({ mode: "dry-run" })],
  [["prune", "--min-age", "2w"], prune({ minAge: 14 * DAY })],
  [["prune", "--min-age", "0"], prune({ minAge: 0 })],
  [["prune", "--used-within", "36h"], prune({ usedWithin: 36 * 3600 })],
  [["prune", "--double-check", "0"], prune({ doubleCheck: 0 })],
  [["prune", "--double-check=90s"], prune({ doubleCheck: 90 })],
  [["prune", "-n", "k8s.io", "--namespace", "moby"], prune({ namespaces: ["k8s.io", "moby"] })],
  [["prune", "--keep", "a*", "--keep", "b?"], prune({ keep: ["a*", "b?"] })],
  [["prune", "--keep-file", "/etc/ctre/keep"], prune({}, { keepFile: "/etc/ctre/keep" })],
  [["prune", "--no-container-cleanup"], prune({ containerCleanup: false })],
  [["prune", "--cleanup-kubelet-containers"], prune({ cleanupKubeletContainers: true })],
  [["prune", "--keep-latest", "2"], prune({ keepLatest: 2 })],
  [["prune", "--pin-memory", "7d"], prune({ pinMemory: 7 * DAY })],
  [["prune", "--no-content-prune"], prune({ contentPrune: false })],
  [["prune", "--content-prune-moby"], prune({ contentPruneMoby: true })],
  [
    ["prune", "-f", "--every", "24h", "--jitter", "2h"],
    prune({ mode: "force" }, { schedule: { every: 24 * 3600, jitter: 2 * 3600 } }),
  ],
  [
    ["prune", "--dry-run", "--every", "1h"],
    prune({ mode: "dry-run" }, { schedule: { every: 3600, jitter: 0 } }),
  ],
  [["prune", "--dry-run", "--json"], prune({ mode: "dry-run", json: true })],
  [["prune", "-f", "--json"], prune({ mode: "force", json: true })],
  [["prune", "-v"], prune({ verbose: true })],
  [["prune", "--verbose"], prune({ verbose: true })],
  [["prune", "--metrics"], prune({ metrics: true })],
  [
    ["prune", "--max-store-size", "20GB"],
    prune({ budget: { kind: "max-store-size", maxBytes: 20e9 } }),
  ],
  [
    ["prune", "--max-store-size", "1.5GiB"],
    prune({ budget: { kind: "max-store-size", maxBytes: 1.5 * 2 ** 30 } }),
  ],
  [
    ["prune", "--min-free", "15"],
    prune({ budget: { kind: "min-free", percent: 15, root: "/var/lib/containerd" } }),
  ],
  [
    ["prune", "--min-free", "15%", "--root", "/data/containerd"],
    prune({
      budget: { kind: "min-free", percent: 15, root: "/data/containerd" },
      root: "/data/containerd",
    }),
  ],
  [
    ["prune", "-a", "/run/k3s/containerd/containerd.sock"],
    prune({}, {
      address: "/run/k3s/containerd/containerd.sock",
    }),
  ],
  [["prune", "--address", "/x.sock"], prune({}, { address: "/x.sock" })],
  [["prune", "--state-dir", "/tmp/s"], prune({ stateDir: "/tmp/s" })],
  // prune: every usage error.
  [["prune", "-f", "--dry-run"], "Use either --force or --dry-run, not both"],
  [["prune", "--json"], "--json needs --dry-run or --force (it cannot ask)"],
  [["prune", "--min-age", "14"], `Invalid duration "14" for --min-age: ${DURATION_HELP}`],
  [["prune", "--used-within", "2y"], `Invalid duration "2y" for --used-within: ${DURATION_HELP}`],
  [["prune", "--pin-memory", "1y"], `Invalid duration "1y" for --pin-memory: ${DURATION_HELP}`],
  [
    ["prune", "--keep-latest", "two"],
    'Invalid number "two" for --keep-latest: use a whole number (e.g. 2)',
  ],
  [
    ["prune", "--double-check", "-1s"],
    'Option "--double-check" needs a value (write --double-check=VALUE for a value that starts ' +
    'with "-")',
  ],
  [["prune", "--double-check=-1s"], `Invalid duration "-1s" for --double-check: ${DURATION_HELP}`],
  [["prune", "-n"], 'Option "--namespace" needs a value'],
  [
    ["prune", "--double-check", "soon"],
    `Invalid duration "soon" for --double-check: ${DURATION_HELP}`,
  ],
  [
    ["prune", "--max-store-size", "lots"],
    'Invalid size "lots" for --max-store-size: use a number with B, kB, MB, GB, TB (1000-based) ' +
    "or KiB, MiB, GiB, TiB (1024-based), e.g. 20GB",
  ],
  [
    ["prune", "--max-store-size", "1GB", "--min-free", "10"],
    "Use either --max-store-size or --min-free, not both",
  ],
  // Without --min-free, --root is the filesystem whose gain prune reports.
  [["prune", "--root", "/x"], prune({ root: "/x" })],
  [["prune", "--every", "1h"], "--every needs --force or --dry-run (a repeating prune cannot ask)"],
  [["prune", "-f", "--jitter", "1h"], "--jitter needs --every"],
  [["prune", "-f", "--every", "0"], "--every must be more than 0"],
  [["prune", "-f", "--every", "1h", "--jitter", "2h"], "--jitter must not be more than --every"],
  [["prune", "-f", "--every", "daily"], `Invalid duration "daily" for --every: ${DURATION_HELP}`],
  [
    ["prune", "--min-free", "100"],
    'Invalid percentage "100" for --min-free: use a number between 0 and 100',
  ],
  [
    ["prune", "--min-free", "ten"],
    'Invalid percentage "ten" for --min-free: use a number between 0 and 100',
  ],
  [["prune", "--force-all"], 'Unknown option "--force-all"'],
  [["prune", "-x"], 'Unknown option "-x"'],
  [["prune", "--min-age"], 'Option "--min-age" needs a value'],
  [["prune", "now"], 'Unexpected argument "now"'],
  [["prune", "--force=yes"], 'Option "--force" does not take a value'],
  // record-image-starts.
  [["record-image-starts"], { kind: "record", record: RECORD }],
  [["record-image-starts", "-q", "--metrics"], {
    kind: "record",
    record: { ...RECORD, quiet: true, metrics: true },
  }],
  [["record-image-starts", "--quiet", "--flush-interval", "5s", "--keep-window", "30d"], {
    kind: "record",
    record: { ...RECORD, quiet: true, flushInterval: 5, keepWindow: 30 * DAY },
  }],
  [["record-image-starts", "-a", "/x.sock", "--state-dir", "/s"], {
    kind: "record",
    address: "/x.sock",
    record: { ...RECORD, stateDir: "/s" },
  }],
  [["record-image-starts", "--flush-interval", "0"], "--flush-interval must be more than 0"],
  [
    ["record-image-starts", "--keep-window", "forever"],
    `Invalid duration "forever" for --keep-window: ${DURATION_HELP}`,
  ],
  [["record-image-starts", "--json"], 'Unknown option "--json"'],
  // doctor and status.
  // df: prune's selection flags, --json, --root.
  [["df"], df()],
  [["df", "--help"], { kind: "help", text: DF_USAGE }],
  [["df", "--json"], df({}, "/var/lib/containerd", true)],
  [
    ["df", "-n", "k8s.io", "--min-age", "0", "--used-within", "1d", "--keep", "a*"],
    df({ namespaces: ["k8s.io"], minAge: 0, usedWithin: DAY, keep: ["a*"] }),
  ],
  [["df", "--keep-latest", "2", "--no-content-prune"], df({ keepLatest: 2, contentPrune: false })],
  [["df", "--root", "/data/containerd"], df({}, "/data/containerd")],
  [["df", "--force"], 'Unknown option "--force"'],
  [["df", "--max-store-size", "1GB"], 'Unknown option "--max-store-size"'],
  [["doctor"], { kind: "doctor", stateDir: SPOOL, json: false }],
  [["doctor", "--json", "-a", "/x.sock", "--state-dir", "/s"], {
    kind: "doctor",
    stateDir: "/s",
    json: true,
    address: "/x.sock",
  }],
  [["status"], { kind: "status", stateDir: SPOOL, json: false }],
  [["status", "--json", "--state-dir", "/s"], { kind: "status", stateDir: "/s", json: true }],
  [["status", "-a", "/x.sock"], '"ctre status" does not use --address'],
  [["doctor", "extra"], 'Unexpected argument "extra"'],
];

Deno.test("parseCommand() maps every flag and every usage error", async (t) => {
  for (const [argv, want] of TABLE) {
    await t.step(JSON.stringify(argv), () => {
      if (typeof want === "string") {
        assert.throws(() => parseCommand(argv), (e: unknown) => {
          assert.ok(e instanceof UsageError, `a UsageError, not ${e}`);
          assert.equal(e.message, want);
          return true;
        });
      } else {
        assert.deepEqual(parseCommand(argv), want);
      }
    });
  }
});

Deno.test({
  name: "ctre exits 2 with the error and a usage hint for every usage error",
  // No sanitizer is switched off: each subprocess is awaited to the end.
  async fn(t) {
    const stateDir = await tempStateDir();
    try {
      const errors = TABLE.filter((row): row is [string[], string] => typeof row[1] === "string");
      // Four at a time: each is a Deno start.
      for (let i = 0; i < errors.length; i += 4) {
        const batch = errors.slice(i, i + 4);
        const results = await Promise.all(batch.map(([argv]) => runCtre(argv, { stateDir })));
        for (const [j, [argv, text]] of batch.entries()) {
          await t.step(JSON.stringify(argv), () => {
            const r = results[j]!;
            assert.equal(r.code, 2, r.stderr);
            assert.equal(r.stderr, `ctre: ${text}\nRun "ctre --help" for usage.\n`);
            assert.equal(r.stdout, "");
          });
        }
      }
    } finally {
      await Deno.remove(stateDir, { recursive: true });
    }
  },
});
