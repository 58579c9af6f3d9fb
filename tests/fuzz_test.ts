/**
 * Fuzzing every parser of outside input: the state files (usage DB, pulls, pins, keep file), the
 * ctr listings and events (captured outputs of 1.6, 1.7 and 2.1, truncated, reordered and
 * garbled), the command line, and prune itself fed a garbled listing. Properties:
 *
 * - nothing throws but the typed errors (ParseError, UsageError, InputError);
 * - an error is one short line: no control characters, no megabyte of echoed input;
 * - good lines next to bad ones are never lost;
 * - no image is removed after a listing fails to parse.
 *
 * Seeds are drawn per run and printed on failure; `CTRE_SEED=<seed>` replays one.
 */
import assert from "node:assert/strict";
import { InputError, ParseError, UsageError } from "../lib/core/errors.ts";
import { quoteCut } from "../lib/core/text.ts";
import { parseUsageDb } from "../lib/state/usage_db.ts";
import { parsePullDb } from "../lib/state/pull_db.ts";
import { parsePinMemory } from "../lib/state/pin_memory.ts";
import { parseKeepFile } from "../lib/state/keep_file.ts";
import { usageKey } from "../lib/state/line_file.ts";
import {
  parseContainerInfo,
  parseContainerLs,
  parseContentLs,
  parseImageLs,
  parseLeaseIds,
  parseNamespaces,
  parseSnapshotLs,
  parseTaskLs,
} from "../lib/ctr/listings.ts";
import { parseEventLine } from "../lib/ctr/events.ts";
import { parseCommand } from "../lib/cli/cli.ts";
import { prune } from "../lib/prune/prune.ts";
import { FakeIo } from "./support/fake_io.ts";
import { FakeNode } from "./support/fake_node.ts";
import { pruneOptions } from "./support/prune_options.ts";
import { prng } from "./support/random.ts";
import { runCtre } from "./support/cli.ts";
import { seeds } from "./support/random.ts";

const ROUNDS = 300;
/** The longest error line accepted (main.ts cuts at 500 anyway; parsers must not need it). */
const MAX_ERROR = 600;
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/;

/** Random text: printable, whitespace, NUL and controls, CR, invalid UTF-8 decoded, long runs. */
function junk(r: () => number, max = 200): string {
  const n = Math.floor(r() * max);
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const k = r();
    bytes[i] = k < 0.6
      ? 32 + Math.floor(r() * 95)
      : k < 0.7
      ? [0, 9, 10, 13][Math.floor(r() * 4)]!
      : Math.floor(r() * 256);
  }
  return new TextDecoder().decode(bytes);
}

/** `text` damaged one way: truncated, lines swapped, characters replaced, a junk line added. */
function damage(r: () => number, text: string): string {
  const lines = text.split("\n");
  switch (Math.floor(r() * 5)) {
    case 0:
      return text.slice(0, Math.floor(r() * text.length));
    case 1: {
      const i = Math.floor(r() * lines.length);
      const j = Math.floor(r() * lines.length);
      [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      return lines.join("\n");
    }
    case 2: {
      const chars = [...text];
      for (let k = 0; k < 1 + r() * 5; k++) chars[Math.floor(r() * chars.length)] = junk(r, 3);
      return chars.join("");
    }
    case 3:
      lines.splice(Math.floor(r() * lines.length), 0, junk(r));
      return lines.join("\n");
    default:
      return lines.map((l) => l + (r() < 0.3 ? "\r" : "")).join("\n");
  }
}

/** Runs `fn`; it may return or throw one of `allowed`, whose message must be one short line. */
function typedOrNothing(
  what: string,
  allowed: (abstract new (...args: never[]) => Error)[],
  fn: () => unknown,
): Error | null {
  try {
    fn();
    return null;
  } catch (e) {
    assert.ok(allowed.some((t) => e instanceof t), `${what} threw ${e}`);
    const msg = (e as Error).message;
    assert.ok(msg.length <= MAX_ERROR, `${what}: error of ${msg.length} characters`);
    assert.ok(!CONTROL.test(msg), `${what}: control characters in ${JSON.stringify(msg)}`);
    assert.ok(!msg.includes("\n"), `${what}: more than one line`);
    return e as Error;
  }
}

/** Runs `check(seed)` for each seed of this run; failures name the seed. */
function forSeeds(count: number, check: (r: () => number, seed: number) => void): void {
  const list = Deno.env.get("CTRE_SEED") ? seeds(0) : seeds(1);
  const all = list.length > 1 || Deno.env.get("CTRE_SEED")
    ? list
    : Array.from({ length: count }, (_, i) => list[0]! + i);
  for (const seed of all) {
    try {
      check(prng(seed), seed);
    } catch (e) {
      throw new Error(`seed ${seed} (replay: CTRE_SEED=${seed}): ${(e as Error).message}`);
    }
  }
}

Deno.test("state files: junk, NUL, CRLF and odd times never throw, and good lines survive", () => {
  const NOW = 1_800_000_000;
  forSeeds(ROUNDS, (r) => {
    const good: string[] = [];
    const lines: string[] = [];
    for (let i = 0; i < 20; i++) {
      if (r() < 0.5) {
        const ref = `docker.io/library/img${i}:1`;
        good.push(ref);
        lines.push(`${NOW - i} ${NOW - i} default ${ref}${r() < 0.2 ? "\r" : ""}`);
      } else {
        lines.push(
          [
            junk(r),
            `${-Math.floor(r() * 1e9)} default x`,
            `9${"9".repeat(20)} default y`,
          ][Math.floor(r() * 3)]!,
        );
      }
    }
    const db = parseUsageDb(lines.join("\n"));
    for (const ref of good) assert.ok(db.entries.has(usageKey("default", ref)), `${ref} lost`);
    for (const rej of db.rejected) {
      const shown = quoteCut(rej.line);
      assert.ok(!CONTROL.test(shown) && shown.length < 140, shown);
    }
    typedOrNothing("parsePullDb", [], () => parsePullDb(lines.join("\n")));
    typedOrNothing("parsePinMemory", [], () => parsePinMemory(lines.join("\n")));
  });
});

Deno.test("a 2 MB line in a state file is rejected and shown cut", () => {
  const line = "x".repeat(2_000_000);
  const db = parseUsageDb(`1 1 default a:1\n${line}\n2 2 default b:1\n`);
  assert.equal(db.entries.size, 2);
  assert.ok(quoteCut(db.rejected[0]!.line).length < 140);
});

Deno.test("keep file: junk gives patterns or one short InputError naming the file and line", () => {
  forSeeds(ROUNDS, (r) => {
    const text = Array.from({ length: 5 }, () => r() < 0.5 ? "docker.io/library/*" : junk(r)).join(
      "\n",
    );
    const e = typedOrNothing(
      "parseKeepFile",
      [InputError],
      () => parseKeepFile(text, "/etc/ctre/keep"),
    );
    if (e) assert.match(e.message, /^Keep file "\/etc\/ctre\/keep" line \d+: /);
  });
  const e = typedOrNothing(
    "2 MB keep line",
    [InputError],
    () => parseKeepFile("x".repeat(2_000_000), "k"),
  );
  assert.ok(e, "a 2 MB pattern is refused");
});

/** Each listing parser with the captured outputs it reads. */
const LISTINGS: [string, (t: string) => unknown, string[]][] = [
  ["image ls", parseImageLs, ["image_ls.txt", "k8s_image_ls.txt"]],
  ["content ls", parseContentLs, ["content_ls.txt", "k8s_content_ls.txt"]],
  ["container ls", parseContainerLs, ["container_ls.txt", "moby_container_ls.txt"]],
  ["task ls", parseTaskLs, ["task_ls.txt"]],
  ["namespace ls -q", parseNamespaces, ["namespace_ls_q.txt"]],
  ["containers info", parseContainerInfo, ["containers_info.txt", "moby_containers_info.txt"]],
];

async function captured(file: string): Promise<string[]> {
  const out: string[] = [];
  for (const v of ["1.6", "1.7", "2.1"]) {
    const text = await Deno.readTextFile(new URL(`./testdata/ctr-${v}/${file}`, import.meta.url))
      .catch(() => null);
    if (text !== null) out.push(text);
  }
  return out;
}

Deno.test("ctr listings: truncated, reordered and garbled output gives rows or one ParseError", async () => {
  for (const [what, parse, files] of LISTINGS) {
    const texts = (await Promise.all(files.map(captured))).flat();
    assert.ok(texts.length > 0, `no captured ${what}`);
    forSeeds(ROUNDS, (r) => {
      const text = damage(r, texts[Math.floor(r() * texts.length)]!);
      typedOrNothing(what, [ParseError], () => parse(text));
    });
  }
  forSeeds(ROUNDS, (r) => {
    typedOrNothing(
      "snapshot ls",
      [ParseError],
      () => parseSnapshotLs(damage(r, "KEY PARENT KIND\nsha256:1  Committed\n")),
    );
    typedOrNothing("leases ls", [ParseError], () => parseLeaseIds(junk(r)));
  });
});

Deno.test("ctr events: garbled lines give an event or one ParseError", async () => {
  const lines = (await captured("events.txt")).flatMap((t) => t.split("\n").filter((l) => l));
  forSeeds(ROUNDS * 3, (r) => {
    const line = damage(r, lines[Math.floor(r() * lines.length)]!);
    typedOrNothing("event", [ParseError], () => parseEventLine(line));
  });
});

const TOKENS = [
  "prune",
  "record-image-starts",
  "status",
  "doctor",
  "--force",
  "--dry-run",
  "--json",
  "-v",
  "--min-age",
  "--used-within",
  "--double-check",
  "--keep",
  "--keep-latest",
  "-n",
  "--every",
  "--max-store-size",
  "--min-free",
  "--state-dir",
  "--address",
  "1d",
  "-1",
  "0",
  "x",
  "",
  "--",
  "-",
  "--help",
  "--version",
  "10%",
  "5GB",
];

Deno.test("command lines: random ones parse or give one short UsageError", () => {
  forSeeds(ROUNDS * 3, (r) => {
    const argv = Array.from(
      { length: Math.floor(r() * 6) },
      () => r() < 0.9 ? TOKENS[Math.floor(r() * TOKENS.length)]! : junk(r, 30),
    );
    typedOrNothing(JSON.stringify(argv), [UsageError], () => parseCommand(argv));
  });
  const e = typedOrNothing(
    "2 MB --keep",
    [UsageError],
    () => parseCommand(["prune", "--keep", "y".repeat(2_000_000)]),
  );
  assert.ok(e, "a 2 MB --keep pattern is refused");
});

/** The parser prune applies to each listing command (by its words after `-n ns`). */
const PARSER_OF: Record<string, (t: string) => unknown> = {
  "image ls": parseImageLs,
  "content ls": parseContentLs,
  "container ls": parseContainerLs,
  "snapshot ls": parseSnapshotLs,
};

Deno.test("prune: no image is removed after a listing fails to parse", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "ctre-fuzz-" });
  try {
    const list = Deno.env.get("CTRE_SEED") ? seeds(0) : seeds(1);
    const all = list.length > 1 ? list : Array.from({ length: 100 }, (_, i) => list[0]! + i);
    let parseFailures = 0;
    for (const seed of all) {
      const r = prng(seed);
      const n = new FakeNode();
      n.addImage("default", "docker.io/library/old:1");
      const used = n.addImage("default", "docker.io/library/used:1");
      n.addContainer("default", "c1", "docker.io/library/used:1", "RUNNING", { snapshotOf: used });
      const target = Object.keys(PARSER_OF)[Math.floor(r() * 4)]!;
      let failed = false;
      let removedAfter = false;
      n.hook = (args) => {
        if (failed && args[2] === "image" && args[3] === "rm") removedAfter = true;
        if (failed || args.slice(2, 4).join(" ") !== target || args.length !== 4) return undefined;
        // Answer the listing with a damaged copy of what the node would print.
        const res = n.answer(args);
        const text = damage(r, res.stdout);
        try {
          PARSER_OF[target]!(text);
        } catch {
          failed = true;
        }
        return { ...res, stdout: text };
      };
      const io = new FakeIo();
      const opts = pruneOptions(stateDir, { minAge: 0, usedWithin: 0 });
      try {
        await prune(n.containerd, opts, io);
      } catch (e) {
        assert.ok(e instanceof ParseError, `seed ${seed}: prune threw ${e}`);
      }
      assert.ok(
        !removedAfter,
        `seed ${seed} (CTRE_SEED=${seed}): image rm after ${target} failed to parse`,
      );
      assert.ok(
        n.refs("default").includes("docker.io/library/used:1"),
        `seed ${seed}: used image removed`,
      );
      if (failed) parseFailures++;
    }
    // The property is only proved if damage made parsing fail often enough.
    if (!Deno.env.get("CTRE_SEED")) {
      assert.ok(parseFailures > 10, `${parseFailures} parse failures`);
    }
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});

Deno.test("the CLI: random command lines exit 0, 1 or 2 with at most two short lines, no stack", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "ctre-fuzz-cli-" });
  try {
    const list = Deno.env.get("CTRE_SEED") ? seeds(0) : seeds(1);
    const all = list.length > 1 ? list : Array.from({ length: 12 }, (_, i) => list[0]! + i);
    for (const seed of all) {
      const r = prng(seed);
      const argv = Array.from(
        { length: 1 + Math.floor(r() * 5) },
        () =>
          r() < 0.85 ? TOKENS[Math.floor(r() * TOKENS.length)]! : junk(r, 30).replaceAll("\0", ""),
      );
      // Nothing that runs until stopped (the recorder, a repeating prune), never a forced prune.
      const args = argv.filter((a) => !["--force", "record-image-starts", "--every"].includes(a));
      const out = await runCtre(args, {
        address: `${stateDir}/no-containerd.sock`,
        stateDir,
      });
      const what = `seed ${seed} (CTRE_SEED=${seed}): ctre ${JSON.stringify(args)}`;
      assert.ok([0, 1, 2].includes(out.code), `${what} exited ${out.code}: ${out.stderr}`);
      if (out.code === 0) continue;
      const lines = out.stderr.trimEnd().split("\n");
      assert.ok(lines.length <= 2, `${what}: ${out.stderr}`);
      for (const l of lines) {
        assert.ok(l.length <= MAX_ERROR && !CONTROL.test(l) && !/^\s+at /.test(l), `${what}: ${l}`);
      }
    }
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});
