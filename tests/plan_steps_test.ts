/** The steps of lib/policy/plan.ts's planNamespace, each on its own. */
import assert from "node:assert/strict";
import type { ImageRow } from "../lib/core/containerd.ts";
import {
  type Candidate,
  candidatesOf,
  decideImage,
  dupeRefWarnings,
  type Rules,
} from "../lib/policy/plan.ts";

const NOW = 1_800_000_000;
const DAY = 86400;
const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;

const row = (ref: string, digest: string, labels: [string, string][] = []): ImageRow => ({
  ref,
  type: "application/vnd.oci.image.manifest.v1+json",
  digest,
  size: 7,
  platforms: "linux/amd64",
  labels: new Map(labels),
});

Deno.test("candidatesOf groups refs by digest with the latest start, stop and pull", () => {
  const snap = {
    ns: "default",
    images: [row("b:1", D1), row("c:1", D2), row("a:1", D1)],
    content: new Map([[D1, {
      digest: D1,
      size: 7,
      ageSeconds: 30 * DAY,
      ageText: "4 weeks",
      labels: new Map(),
    }]]),
  };
  const usage = new Map([
    ["default a:1", { start: NOW - 9 * DAY, stop: NOW - 8 * DAY }],
    ["default b:1", { start: NOW - 20 * DAY, stop: null }],
    ["k8s.io c:1", { start: NOW, stop: null }], // another namespace
  ]);
  const pulls = new Map([["default b:1", NOW - 5 * DAY]]);
  const [one, two] = candidatesOf(snap, usage, pulls);
  assert.deepEqual(
    [one!.digest, one!.refs, one!.used, one!.pulled, one!.lastUse, one!.ageSeconds],
    [
      D1,
      ["a:1", "b:1"],
      { start: NOW - 9 * DAY, stop: NOW - 8 * DAY },
      NOW - 5 * DAY,
      NOW - 5 * DAY,
      30 * DAY,
    ],
  );
  assert.deepEqual(
    [two!.digest, two!.refs, two!.used, two!.pulled, two!.lastUse, two!.ageSeconds],
    [D2, ["c:1"], undefined, null, null, null],
  );
});

Deno.test("decideImage: the first rule that keeps an image wins, else prune", async (t) => {
  const candidate = (over: Partial<Candidate> = {}): Candidate => ({
    digest: D1,
    group: [row("a:1", D1)],
    refs: ["a:1"],
    used: undefined,
    pulled: null,
    lastUse: null,
    ageSeconds: 30 * DAY,
    ...over,
  });
  const rules = (over: Partial<Rules> = {}): Rules => ({
    ns: "default",
    policy: { now: NOW, minAge: 14 * DAY, usedWithin: 7 * DAY, keep: [] },
    usersOf: new Map(),
    patterns: [],
    newest: new Set(),
    pins: new Map(),
    pinCutoff: NOW - 30 * DAY,
    ...over,
  });
  const old = { ageSeconds: 30 * DAY, ageText: "4 weeks" };
  const young = { ageSeconds: DAY, ageText: "1 day" };
  const everything = rules({
    usersOf: new Map([[D1, [{ id: "z", how: "name" }, { id: "c", how: "snapshot" }]]]),
    patterns: [{ p: "a:*", re: /^a:.*$/ }],
    newest: new Set([D1]),
    pins: new Map([["default a:1", {
      ns: "default",
      ref: "a:1",
      digest: D1,
      firstSeen: NOW - 40 * DAY,
      lastSeen: NOW - DAY,
    }]]),
  });
  const cases: [string, Candidate, Rules, typeof old, string, Record<string, unknown>][] = [
    ["in use beats all", candidate(), everything, old, "in-use", { containers: ["c", "z"] }],
    [
      "pinned by label",
      candidate({ group: [row("a:1", D1, [["io.cri-containerd.pinned", "pinned"]])] }),
      { ...everything, usersOf: new Map() },
      old,
      "pinned",
      { pinnedRememberedSince: undefined },
    ],
    [
      "pin memory",
      candidate(),
      { ...everything, usersOf: new Map() },
      old,
      "pinned",
      { pinnedRememberedSince: NOW - 40 * DAY },
    ],
    [
      "pattern",
      candidate(),
      { ...everything, usersOf: new Map(), pins: new Map() },
      old,
      "kept-by-pattern",
      { pattern: "a:*" },
    ],
    ["kept latest", candidate(), rules({ newest: new Set([D1]) }), old, "kept-latest", {}],
    ["recent", candidate({ lastUse: NOW - DAY }), rules(), old, "recently-used", {}],
    ["young", candidate(), rules(), young, "too-young", {}],
    ["old and unused", candidate({ lastUse: NOW - 8 * DAY }), rules(), old, "prune", {}],
  ];
  for (const [name, c, r, blob, reason, extra] of cases) {
    await t.step(name, () => {
      const p = decideImage(c, r, blob);
      assert.equal(p.reason, reason);
      assert.equal(p.decision, reason === "prune" ? "prune" : "keep");
      for (const [k, v] of Object.entries(extra)) {
        assert.deepEqual((p as unknown as Record<string, unknown>)[k], v, k);
      }
    });
  }
  await t.step("no content entry: age unknown, kept as too-young", () => {
    const p = decideImage(candidate(), rules(), undefined);
    assert.deepEqual([p.reason, p.ageSeconds, p.ageText], ["too-young", null, null]);
  });
  await t.step("a pull is reported only when recorded", () => {
    assert.equal("lastPull" in decideImage(candidate(), rules(), old), false);
    assert.equal(decideImage(candidate({ pulled: NOW - DAY }), rules(), old).lastPull, NOW - DAY);
  });
});

Deno.test("dupeRefWarnings: only refs of more than one repository", () => {
  const p = { ns: "default", digest: D1, refs: ["a:1", "a:2", D1] };
  assert.deepEqual(dupeRefWarnings(p), []);
  assert.deepEqual(dupeRefWarnings({ ...p, refs: ["a:1", "r.io/a:1"] }), [
    `Dupe refs found for ns default image ${D1}, keeping all: a:1 + r.io/a:1`,
  ]);
});
