/**
 * The option table's parser and help layout, on a small table of their own (the real commands'
 * tables are covered argv by argv in cli_test.ts and by the help goldens in report_test.ts).
 */
import assert from "node:assert/strict";
import { UsageError } from "../lib/core/errors.ts";
import {
  helpRows,
  optionHelp,
  type OptionTable,
  type OptionValues,
  parseOptions,
} from "../lib/cli/options.ts";

const TABLE = {
  force: { type: "boolean", short: "f", help: ["Remove without asking"] },
  verbose: { type: "boolean", short: "v", help: ["Say more"] },
  "min-age": {
    type: "string",
    arg: "DURATION",
    default: "14d",
    help: ["Content age (default {default})"],
  },
  "double-check": {
    type: "string",
    arg: "DURATION",
    help: ["Re-list for this long", "(0 turns it off)"],
  },
  namespace: { type: "string", short: "n", arg: "NS", multiple: true, help: ["Only this"] },
  address: { type: "string", short: "a", arg: "SOCKET", hidden: true, help: ["Socket"] },
} as const satisfies OptionTable;

const NONE: OptionValues<typeof TABLE> = {
  force: false,
  verbose: false,
  "min-age": "14d",
  "double-check": undefined,
  namespace: [],
  address: undefined,
};

/** argv → the values, or the exact UsageError text. */
const CASES: [string[], Partial<typeof NONE> | string][] = [
  [[], {}],
  [["-f"], { force: true }],
  [["-fv"], { force: true, verbose: true }],
  [["-vf", "--force"], { force: true, verbose: true }],
  [["--min-age", "1h"], { "min-age": "1h" }],
  [["--min-age=1h", "--min-age", "2h"], { "min-age": "2h" }],
  [["--min-age=-1h"], { "min-age": "-1h" }],
  [["--min-age", "-"], { "min-age": "-" }],
  [["--min-age="], { "min-age": "" }],
  [["-n", "a", "--namespace", "b", "-nc", "--namespace=d"], { namespace: ["a", "b", "c", "d"] }],
  [["-fnk8s.io"], { force: true, namespace: ["k8s.io"] }],
  [["-fn", "k8s.io"], { force: true, namespace: ["k8s.io"] }],
  [["-a", "/x.sock"], { address: "/x.sock" }],
  [["-n-x"], { namespace: ["-x"] }],
  [["--force-all"], 'Unknown option "--force-all"'],
  [["--force-all=1"], 'Unknown option "--force-all"'],
  [["-x"], 'Unknown option "-x"'],
  [["-fx"], 'Unknown option "-x"'],
  [["--constructor"], 'Unknown option "--constructor"'],
  [["--__proto__"], 'Unknown option "--__proto__"'],
  [["--force=yes"], 'Option "--force" does not take a value'],
  [["--min-age"], 'Option "--min-age" needs a value'],
  [["-n"], 'Option "--namespace" needs a value'],
  [["-fn"], 'Option "--namespace" needs a value'],
  [
    ["--min-age", "-1h"],
    'Option "--min-age" needs a value (write --min-age=VALUE for a value that starts with "-")',
  ],
  // node:util named the short form here ('write -n=VALUE', which is no valid syntax).
  [
    ["-n", "-x"],
    'Option "--namespace" needs a value (write --namespace=VALUE for a value that starts with "-")',
  ],
  [["now"], 'Unexpected argument "now"'],
  [["--", "-f"], 'Unexpected argument "-f"'],
  [["-"], 'Unexpected argument "-"'],
  // Option problems come first, wherever the stray argument is (as in node:util parseArgs).
  [["now", "--frob"], 'Unknown option "--frob"'],
];

Deno.test("parseOptions() parses every form and reports every usage error", async (t) => {
  for (const [argv, want] of CASES) {
    await t.step(JSON.stringify(argv), () => {
      if (typeof want === "string") {
        assert.throws(() => parseOptions(argv, TABLE), (e: unknown) => {
          assert.ok(e instanceof UsageError, `a UsageError, not ${e}`);
          assert.equal(e.message, want);
          return true;
        });
      } else {
        assert.deepEqual(parseOptions(argv, TABLE), { ...NONE, ...want });
      }
    });
  }
});

Deno.test("parseOptions() does not share collected values between calls", () => {
  const first = parseOptions(["-n", "a"], TABLE);
  first.namespace.push("b");
  assert.deepEqual(parseOptions([], TABLE).namespace, []);
});

Deno.test("optionHelp() lays out the table in order, hidden options left out", () => {
  assert.deepEqual(optionHelp(TABLE), [
    "  -f, --force                Remove without asking",
    "  -v, --verbose              Say more",
    "      --min-age DURATION     Content age (default 14d)",
    "      --double-check DURATION",
    "                             Re-list for this long",
    "                             (0 turns it off)",
    "  -n, --namespace NS         Only this",
  ]);
});

Deno.test("helpRows() puts the help beside a short flag and under a long one", () => {
  assert.deepEqual(helpRows("  abc", ["x", "y"], 8), ["  abc   x", "        y"]);
  assert.deepEqual(helpRows("  abcdef", ["x"], 8), ["  abcdef", "        x"]);
  assert.deepEqual(helpRows("  abcde", ["x"], 8), ["  abcde x"]);
  assert.deepEqual(helpRows("  abc", [], 8), ["  abc"]);
});
