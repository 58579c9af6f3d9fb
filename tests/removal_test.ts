import assert from "node:assert/strict";
import { CtrError } from "../lib/core/errors.ts";
import { REMOVE_CHUNK, removeImages } from "../lib/prune/removal.ts";
import { PROBE_LABEL } from "../lib/prune/repoint_watch.ts";
import type { CtrEvent } from "../lib/ctr/events.ts";
import type { EventStream } from "../lib/ctr/gateway.ts";
import { readRemoval } from "../lib/ctr/image_removal.ts";
import { ok } from "./support/fake_ctr.ts";
import { exitError, FakeContainerd, imageRow } from "./support/fake_containerd.ts";

const NS = "k8s.io";
const T = 'time="2026-11-27T17:12:41.976313083Z"';

const DIGEST = `sha256:${"a".repeat(64)}`;

/** Refs as planned, all of one digest. */
function planned(refs: string[], digest = DIGEST) {
  return refs.map((ref) => ({ ref, digest }));
}

/** The removal without the removal watch (tested below on its own). */
const NOWATCH = { watch: false };

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

/** A fake containerd whose namespace NS holds `refs`, all of `digest`. */
function holding(refs: string[], digest = DIGEST): FakeContainerd {
  const c = new FakeContainerd();
  c.ns(NS).images = refs.map((ref) => imageRow(ref, digest));
  return c;
}

Deno.test("removeImages() re-reads a chunk's refs, then removes them in one go", async () => {
  const refs = ["docker.io/library/a:1", "docker.io/library/b:1"];
  const c = holding(refs);
  const outcome = await removeImages(c, NS, planned(refs), NOWATCH);
  assert.deepEqual(outcome, {
    removed: refs,
    missing: [],
    failed: [],
    moved: [],
    lost: [],
    unwatched: 0,
  });
  assert.deepEqual(c.calls, [["listImages", NS, refs], ["removeImages", NS, refs, false]]);
});

Deno.test("removeImages() keeps a ref re-pointed since the plan, and skips one already gone", async () => {
  const c = holding(["a:1"]);
  c.ns(NS).images.push(imageRow("b:1", `sha256:${"b".repeat(64)}`));
  const outcome = await removeImages(c, NS, planned(["a:1", "b:1", "c:1"]), {
    sync: true,
    watch: false,
  });
  assert.deepEqual(outcome, {
    removed: ["a:1"],
    missing: ["c:1"],
    failed: [],
    moved: [{ ref: "b:1", now: `sha256:${"b".repeat(64)}` }],
    lost: [],
    unwatched: 0,
  });
  assert.deepEqual(c.callsOf("removeImages"), [[NS, ["a:1"], true]]);
});

Deno.test("removeImages() with no refs asks nothing", async () => {
  const c = holding([]);
  assert.deepEqual(await removeImages(c, NS, []), {
    removed: [],
    missing: [],
    failed: [],
    moved: [],
    lost: [],
    unwatched: 0,
  });
  assert.deepEqual(c.calls, []);
});

Deno.test("removeImages() splits 250 refs into 3 removals of at most 100", async () => {
  assert.equal(REMOVE_CHUNK, 100);
  const refs = Array.from({ length: 250 }, (_, i) => `docker.io/library/img:${i}`);
  const c = holding(refs.filter((r) => r !== "docker.io/library/img:150"));
  const outcome = await removeImages(c, NS, planned(refs), NOWATCH);
  const removals = c.callsOf("removeImages").map((a) => a[1] as string[]);
  assert.deepEqual(removals.map((chunk) => chunk.length), [100, 99, 50]);
  assert.deepEqual(c.callsOf("listImages").map((a) => (a[1] as string[]).length), [100, 100, 50]);
  assert.equal(outcome.removed.length, 249);
  assert.deepEqual(outcome.missing, ["docker.io/library/img:150"]);
  assert.deepEqual(outcome.failed, []);
});

Deno.test("removeImages() marks every ref of a chunk failed when ctr cannot run", async () => {
  const refs = Array.from({ length: 150 }, (_, i) => `x:${i}`);
  const c = holding(refs);
  let call = 0;
  c.fault = (method) => {
    if (method === "removeImages" && ++call === 2) {
      throw new CtrError("Cannot run ctr -n k8s.io image rm: ctr is not installed", 127, "");
    }
  };
  const outcome = await removeImages(c, NS, planned(refs), NOWATCH);
  assert.equal(call, 2);
  assert.deepEqual(outcome.removed, refs.slice(0, 100));
  assert.deepEqual(outcome.missing, []);
  assert.deepEqual(outcome.failed.map((f) => f.ref), refs.slice(100));
  for (const f of outcome.failed) {
    assert.equal(f.reason, "Cannot run ctr -n k8s.io image rm: ctr is not installed");
  }
});

Deno.test("removeImages() goes on with the next chunk after a failing one", async () => {
  const refs = Array.from({ length: 120 }, (_, i) => `x:${i}`);
  const c = holding(refs);
  c.fault = (method, args) => {
    const chunk = args[1] as string[] | undefined;
    if (method === "listImages" && chunk?.includes("x:0")) {
      throw exitError("image ls", "ctr: connection refused\n");
    }
  };
  const outcome = await removeImages(c, NS, planned(refs), NOWATCH);
  assert.equal(c.callsOf("removeImages").length, 1);
  assert.deepEqual(outcome.removed, refs.slice(100));
  assert.equal(outcome.failed.length, 100);
  assert.match(outcome.failed[0]!.reason, /exited with code 1: ctr: connection refused$/);
});

/** An image event stream the test pushes to, as containerd would; it ends when stopped. */
function liveEvents(): { stream: EventStream; push: (topic: string, name: string) => void } {
  const queue: CtrEvent[] = [];
  let wake = () => {};
  let ended = false;
  const stream: EventStream = {
    events: (async function* () {
      while (true) {
        while (queue.length > 0) yield queue.shift()!;
        if (ended) return;
        await new Promise<void>((resolve) => wake = resolve);
      }
    })(),
    done: Promise.resolve({ code: 0, stderr: "" }),
    stop() {
      ended = true;
      wake();
    },
  };
  const push = (topic: string, name: string) => {
    queue.push({ time: 0, ns: NS, topic: `/images/${topic}`, payload: { name } });
    wake();
  };
  return { stream, push };
}

/** A fake containerd holding `refs` whose image events and probe labels go to `live`. */
function watched(refs: string[], live: ReturnType<typeof liveEvents>): FakeContainerd {
  const c = holding(refs);
  c.imageEvents = () => live.stream;
  c.on.labelImage = (_ns, ref) => Promise.resolve(live.push("update", ref));
  return c;
}

Deno.test("removeImages() reports a ref re-pointed between the re-read and its deletion as lost", async () => {
  const live = liveEvents();
  const c = watched(["a:1", "b:1"], live);
  c.on.removeImages = (_ns, refs) => {
    // b:1 is pulled again while ctr image rm runs: ctr deletes the new record.
    live.push("create", "b:1");
    for (const ref of refs) live.push("delete", ref);
    return Promise.resolve({ removed: refs, missing: [], failed: [] });
  };
  const outcome = await removeImages(c, NS, planned(["a:1", "b:1"]));
  assert.deepEqual(outcome.removed, ["a:1"]);
  assert.deepEqual(outcome.lost, ["b:1"]);
  assert.deepEqual(outcome.failed.map((f) => f.ref), ["b:1"]);
  assert.match(outcome.failed[0]!.reason, /re-pointed .* the image deleted was the new one/);
  assert.equal(outcome.unwatched, 0);
  assert.deepEqual(c.callsOf("labelImage"), [[NS, "a:1", PROBE_LABEL, "1"]]);
});

Deno.test("removeImages() keeps a ref whose create event came before ctr image rm", async () => {
  const live = liveEvents();
  const c = watched(["a:1", "b:1"], live);
  c.on.listImages = async (_ns, refs) => {
    // Re-pointed right after the re-read listed it unchanged; the event is delivered (one turn
    // of the event loop) before the listing's answer arrives.
    live.push("create", "b:1");
    await new Promise((resolve) => setTimeout(resolve, 0));
    return (refs ?? []).map((ref) => imageRow(ref, DIGEST));
  };
  c.on.removeImages = (_ns, refs) => {
    for (const ref of refs) live.push("delete", ref);
    return Promise.resolve({ removed: refs, missing: [], failed: [] });
  };
  const outcome = await removeImages(c, NS, planned(["a:1", "b:1"]));
  assert.deepEqual(outcome.removed, ["a:1"]);
  assert.deepEqual(outcome.moved, [{ ref: "b:1", now: null }]);
  assert.deepEqual(outcome.lost, []);
  assert.deepEqual(c.callsOf("removeImages"), [[NS, ["a:1"], false]]);
});

Deno.test("removeImages() without image events removes unwatched and takes the probe label off", async () => {
  const c = holding(["a:1"]);
  const outcome = await removeImages(c, NS, planned(["a:1"]));
  assert.deepEqual(outcome.removed, ["a:1"]);
  assert.equal(outcome.unwatched, 1);
  assert.deepEqual(c.callsOf("labelImage"), [
    [NS, "a:1", PROBE_LABEL, "1"],
    [NS, "a:1", PROBE_LABEL, ""],
  ]);
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
