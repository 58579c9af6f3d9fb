import assert from "node:assert/strict";
import { CtrError } from "../lib/core/errors.ts";
import { readRemoval, REMOVE_CHUNK, removeImages } from "../lib/prune/removal.ts";
import { fail, FakeCtr, ok } from "./support/fake_ctr.ts";

const NS = "k8s.io";
const T = 'time="2026-11-27T17:12:41.976313083Z"';

/** Refs as planned, all of one digest (the bare removal does not look at it). */
function planned(refs: string[], digest = `sha256:${"a".repeat(64)}`) {
  return refs.map((ref) => ({ ref, digest }));
}

/** The bare removal, without the last-second re-read (tested below on its own). */
const BARE = { check: false, watch: false };

function rmArgs(refs: string[]): string[] {
  return ["-n", NS, "image", "rm", ...refs];
}

/** What `ctr image rm` prints: deleted refs on stdout, logrus lines on stderr. */
function ctrRm(
  refs: string[],
  opts: { missing?: string[]; failing?: Record<string, string> } = {},
) {
  const missing = new Set(opts.missing ?? []);
  const failing = opts.failing ?? {};
  const out: string[] = [];
  const err: string[] = [];
  let first: string | undefined;
  for (const ref of refs) {
    if (missing.has(ref)) {
      err.push(`${T} level=warning msg="${ref}: image not found"`);
    } else if (ref in failing) {
      err.push(`${T} level=error msg="unable to delete ${ref}" error="${failing[ref]}"`);
      first ??= `ctr: unable to delete ${ref}: ${failing[ref]}`;
    } else {
      out.push(ref);
    }
  }
  if (first !== undefined) err.push(first);
  return {
    code: first === undefined ? 0 : 1,
    stdout: out.map((l) => `${l}\n`).join(""),
    stderr: err.map((l) => `${l}\n`).join(""),
  };
}

Deno.test("readRemoval() reads one ctr image rm run", async (t) => {
  await t.step("all removed", () => {
    const refs = ["docker.io/library/a:1", "docker.io/library/b:2", "sha256:" + "a".repeat(64)];
    assert.deepEqual(readRemoval(refs, ctrRm(refs), rmArgs(refs)), {
      removed: refs,
      missing: [],
      failed: [],
    });
  });

  await t.step("a missing ref is a warning, not a failure", () => {
    const refs = ["x:1", "x:2"];
    const r = ctrRm(refs, { missing: ["x:1"] });
    assert.equal(r.code, 0);
    assert.equal(r.stderr, `${T} level=warning msg="x:1: image not found"\n`);
    assert.deepEqual(readRemoval(refs, r, rmArgs(refs)), {
      removed: ["x:2"],
      missing: ["x:1"],
      failed: [],
    });
  });

  await t.step("one failing while the others are removed", () => {
    const refs = ["x:1", "x:2", "x:3"];
    const r = ctrRm(refs, { failing: { "x:2": "context deadline exceeded" } });
    assert.equal(r.code, 1);
    const outcome = readRemoval(refs, r, rmArgs(refs));
    assert.deepEqual(outcome.removed, ["x:1", "x:3"]);
    assert.deepEqual(outcome.missing, []);
    assert.deepEqual(outcome.failed, [{
      ref: "x:2",
      reason: `ctr -n ${NS} image rm … exited with code 1: ` +
        "ctr: unable to delete x:2: context deadline exceeded",
    }]);
  });

  await t.step("missing and failing refs together, each with its own reason", () => {
    const refs = ["x:1", "x:2", "x:3", "x:4"];
    const r = ctrRm(refs, {
      missing: ["x:3"],
      failing: { "x:1": "boom one", "x:4": "boom four" },
    });
    const outcome = readRemoval(refs, r, rmArgs(refs));
    assert.deepEqual(outcome.removed, ["x:2"]);
    assert.deepEqual(outcome.missing, ["x:3"]);
    assert.deepEqual(outcome.failed.map((f) => f.ref), ["x:1", "x:4"]);
    // Only the first error gets the final "ctr: ..." line; the other one is named by its log line.
    assert.match(outcome.failed[0]!.reason, /ctr: unable to delete x:1: boom one$/);
    assert.match(outcome.failed[1]!.reason, /msg="unable to delete x:4" error="boom four"$/);
  });

  await t.step("refs that are prefixes of each other are told apart", () => {
    const refs = ["a:1", "a:10", "docker.io/library/a:1", "a:100"];
    const r = ctrRm(refs, { missing: ["a:10"], failing: { "a:100": "boom" } });
    const outcome = readRemoval(refs, r, rmArgs(refs));
    assert.deepEqual(outcome.removed, ["a:1", "docker.io/library/a:1"]);
    assert.deepEqual(outcome.missing, ["a:10"]);
    assert.deepEqual(outcome.failed.map((f) => f.ref), ["a:100"]);
  });

  await t.step("a short ref is not missing when only a longer one is", () => {
    const refs = ["a:1", "a:10"];
    const r = {
      code: 1,
      stdout: "",
      stderr: `${T} level=warning msg="a:10: image not found"\n` +
        `${T} level=error msg="unable to delete a:1" error="boom"\nctr: unable to delete a:1: boom\n`,
    };
    const outcome = readRemoval(refs, r, rmArgs(refs));
    assert.deepEqual(outcome.missing, ["a:10"]);
    assert.deepEqual(outcome.failed.map((f) => f.ref), ["a:1"]);
    assert.match(outcome.failed[0]!.reason, /ctr: unable to delete a:1: boom$/);
  });

  await t.step("a failure of a longer ref is not blamed on its prefix", () => {
    const refs = ["a:10", "a:1", "b/a:1"];
    const r = ctrRm(refs, { failing: { "a:10": "boom ten", "a:1": "boom one" } });
    const outcome = readRemoval(refs, r, rmArgs(refs));
    assert.deepEqual(outcome.removed, ["b/a:1"]);
    assert.deepEqual(outcome.failed, [
      {
        ref: "a:10",
        reason: `ctr -n ${NS} image rm … exited with code 1: ctr: unable to delete a:10: boom ten`,
      },
      {
        ref: "a:1",
        reason: `ctr -n ${NS} image rm … exited with code 1: ` +
          `${T} level=error msg="unable to delete a:1" error="boom one"`,
      },
    ]);
  });

  await t.step("a missing ref that ends like another ref does not make that one missing", () => {
    const refs = ["docker.io/library/a:1", "a:1"];
    const r = ctrRm(refs, { missing: ["docker.io/library/a:1"], failing: { "a:1": "boom" } });
    const outcome = readRemoval(refs, r, rmArgs(refs));
    assert.deepEqual(outcome.missing, ["docker.io/library/a:1"]);
    assert.deepEqual(outcome.failed.map((f) => f.ref), ["a:1"]);
  });

  await t.step("a ref neither printed nor mentioned has failed, with ctr's last line", () => {
    const refs = ["x:1", "x:2"];
    const r = { code: 1, stdout: "x:1\n", stderr: "ctr: failed to dial\n" };
    assert.deepEqual(readRemoval(refs, r, rmArgs(refs)), {
      removed: ["x:1"],
      missing: [],
      failed: [{
        ref: "x:2",
        reason: `ctr -n ${NS} image rm … exited with code 1: ctr: failed to dial`,
      }],
    });
  });

  await t.step("silence about a ref is not success", () => {
    const refs = ["x:1"];
    const outcome = readRemoval(refs, ok(""), rmArgs(refs));
    assert.deepEqual(outcome.removed, []);
    assert.deepEqual(outcome.failed.map((f) => f.ref), ["x:1"]);
    assert.match(outcome.failed[0]!.reason, /not reported as deleted/);
  });
});

Deno.test("removeImages() removes in one ctr call per chunk", async () => {
  const ctr = new FakeCtr((args) => ctrRm(args.slice(4)));
  const refs = ["docker.io/library/a:1", "docker.io/library/b:1"];
  const outcome = await removeImages(ctr, NS, planned(refs), BARE);
  assert.deepEqual(outcome, {
    removed: refs,
    missing: [],
    failed: [],
    moved: [],
    lost: [],
    unwatched: 0,
  });
  assert.deepEqual(ctr.calls, [rmArgs(refs)]);
});

Deno.test("removeImages() with no refs runs no ctr", async () => {
  const ctr = new FakeCtr((args) => ctrRm(args.slice(4)));
  assert.deepEqual(await removeImages(ctr, NS, [], BARE), {
    removed: [],
    missing: [],
    failed: [],
    moved: [],
    lost: [],
    unwatched: 0,
  });
  assert.equal(ctr.spawned, 0);
});

Deno.test("removeImages() splits 250 refs into 3 calls of at most 100", async () => {
  assert.equal(REMOVE_CHUNK, 100);
  const refs = Array.from({ length: 250 }, (_, i) => `docker.io/library/img:${i}`);
  const ctr = new FakeCtr((args) =>
    ctrRm(args.slice(4), { missing: ["docker.io/library/img:150"] })
  );
  const outcome = await removeImages(ctr, NS, planned(refs), BARE);
  assert.deepEqual(ctr.calls.map((a) => a.length - 4), [100, 100, 50]);
  for (const args of ctr.calls) assert.deepEqual(args.slice(0, 4), ["-n", NS, "image", "rm"]);
  assert.deepEqual(ctr.calls.flatMap((a) => a.slice(4)), refs);
  assert.equal(outcome.removed.length, 249);
  assert.deepEqual(outcome.missing, ["docker.io/library/img:150"]);
  assert.deepEqual(outcome.failed, []);
});

Deno.test("removeImages() marks every ref of a chunk failed when ctr cannot run", async () => {
  const refs = Array.from({ length: 150 }, (_, i) => `x:${i}`);
  let call = 0;
  const ctr = new FakeCtr((args) => {
    call++;
    if (call === 2) {
      throw new CtrError("Cannot run ctr -n k8s.io image rm: ctr is not installed", 127, "");
    }
    return ctrRm(args.slice(4));
  });
  const outcome = await removeImages(ctr, NS, planned(refs), BARE);
  assert.equal(ctr.spawned, 2);
  assert.deepEqual(outcome.removed, refs.slice(0, 100));
  assert.deepEqual(outcome.missing, []);
  assert.deepEqual(outcome.failed.map((f) => f.ref), refs.slice(100));
  for (const f of outcome.failed) {
    assert.equal(f.reason, "Cannot run ctr -n k8s.io image rm: ctr is not installed");
  }
});

Deno.test("removeImages() goes on with the next chunk after a failing one", async () => {
  const refs = Array.from({ length: 120 }, (_, i) => `x:${i}`);
  const ctr = new FakeCtr((args) => {
    const chunk = args.slice(4);
    return chunk.includes("x:0") ? fail("ctr: connection refused\n") : ctrRm(chunk);
  });
  const outcome = await removeImages(ctr, NS, planned(refs), BARE);
  assert.equal(ctr.spawned, 2);
  assert.deepEqual(outcome.removed, refs.slice(100));
  assert.equal(outcome.failed.length, 100);
  assert.match(outcome.failed[0]!.reason, /exited with code 1: ctr: connection refused$/);
});

function fixture(path: string): string {
  return Deno.readTextFileSync(new URL(`./testdata/${path}`, import.meta.url));
}

Deno.test("readRemoval() reads a real ctr 1.6 image rm with a missing ref", () => {
  const refs = [
    "docker.io/library/ctre-app:latest",
    "docker.io/library/ctre-missing:1",
    "docker.io/library/ctre-old:0.1",
  ];
  const r = {
    code: Number(fixture("ctr-1.6/image_rm.code").trim()),
    stdout: fixture("ctr-1.6/image_rm.stdout"),
    stderr: fixture("ctr-1.6/image_rm.stderr"),
  };
  assert.equal(r.code, 0);
  assert.deepEqual(readRemoval(refs, r, ["-n", "default", "image", "rm", ...refs]), {
    removed: ["docker.io/library/ctre-app:latest", "docker.io/library/ctre-old:0.1"],
    missing: ["docker.io/library/ctre-missing:1"],
    failed: [],
  });
});

Deno.test("removeImages() reports every ref failed when containerd is down (real stderr)", async () => {
  const stderr = fixture("ctr-1.6/ctr_refused.stderr");
  const ctr = new FakeCtr(() => fail(stderr));
  const outcome = await removeImages(ctr, "default", planned(["x:1", "x:2"]), BARE);
  assert.deepEqual(outcome.removed, []);
  assert.deepEqual(outcome.missing, []);
  assert.deepEqual(outcome.failed.map((f) => f.ref), ["x:1", "x:2"]);
  for (const f of outcome.failed) {
    assert.equal(
      f.reason,
      `ctr -n default image rm … exited with code 1: ${stderr.trim()}`,
    );
  }
});
