/** The checks between plan and removal (recheck.ts), as tables. */
import assert from "node:assert/strict";
import type { ImageRow } from "../lib/core/containerd.ts";
import { imageKey, type ImagePlan, prunableSet } from "../lib/policy/plan.ts";
import {
  confirmAfterAnswer,
  confirmPass,
  keptSince,
  recheckCandidates,
  splitByTarget,
} from "../lib/policy/recheck.ts";

function image(name: string, over: Partial<ImagePlan> = {}): ImagePlan {
  return {
    ns: "default",
    digest: `sha256:${name.padEnd(64, "0")}`,
    refs: [`${name}:1`],
    size: 1,
    ageSeconds: 99,
    ageText: "4 weeks",
    lastStart: null,
    lastStop: null,
    decision: "prune",
    reason: "prune",
    ...over,
  };
}
const used = (name: string) => image(name, { decision: "keep", reason: "in-use" });
const brief = (plan: ImagePlan[]) => plan.map((p) => `${p.refs[0]} ${p.decision} ${p.reason}`);

Deno.test("confirmPass() prunes only what every pass allowed", async (t) => {
  const cases: {
    name: string;
    before: ImagePlan[];
    first: string[];
    latest: ImagePlan[];
    want: string[];
  }[] = [
    {
      name: "prunable in every pass: prune",
      before: [image("a")],
      first: ["a"],
      latest: [image("a")],
      want: ["a:1 prune prune"],
    },
    {
      name: "used now, prunable in the first pass: used-during-double-check",
      before: [image("a")],
      first: ["a"],
      latest: [used("a")],
      want: ["a:1 keep used-during-double-check"],
    },
    {
      name: "dropped in an earlier pass, used still: stays used-during-double-check",
      before: [image("a", { decision: "keep", reason: "used-during-double-check" })],
      first: ["a"],
      latest: [used("a")],
      want: ["a:1 keep used-during-double-check"],
    },
    {
      name: "dropped earlier, prunable again: not confirmed",
      before: [image("a", { decision: "keep", reason: "used-during-double-check" })],
      first: ["a"],
      latest: [image("a")],
      want: ["a:1 keep used-during-double-check"],
    },
    {
      name: "kept in the first pass: the latest reason",
      before: [used("a")],
      first: [],
      latest: [used("a")],
      want: ["a:1 keep in-use"],
    },
    {
      name: "prunable only now: not confirmed",
      before: [used("a")],
      first: [],
      latest: [image("a")],
      want: ["a:1 keep used-during-double-check"],
    },
    {
      name: "a new ref for the digest: not confirmed",
      before: [image("a")],
      first: ["a"],
      latest: [image("a", { refs: ["a:1", "a:2"] })],
      want: ["a:1 keep used-during-double-check"],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const first = new Set(c.first.map((n) => imageKey(image(n))));
      assert.deepEqual(brief(confirmPass(c.latest, prunableSet(c.before), first)), c.want);
    });
  }
});

Deno.test("confirmAfterAnswer() relabels only what the budget did not need", async (t) => {
  const spare = image("spare", {
    decision: "keep",
    reason: "within-budget",
    lruRank: 2,
    budgetNeeded: false,
  });
  const shown = [image("go", { lruRank: 1, budgetNeeded: true }), spare, used("u")];
  const cases: { name: string; latest: ImagePlan[]; want: string[] }[] = [
    {
      name: "nothing changed",
      latest: [image("go"), image("spare"), used("u")],
      want: ["go:1 prune prune", "spare:1 keep within-budget", "u:1 keep in-use"],
    },
    {
      name: "the listed image used since",
      latest: [used("go"), image("spare"), used("u")],
      want: [
        "go:1 keep used-during-double-check",
        "spare:1 keep within-budget",
        "u:1 keep in-use",
      ],
    },
    {
      name: "the spare image used since: its real reason",
      latest: [image("go"), used("spare"), used("u")],
      want: ["go:1 prune prune", "spare:1 keep in-use", "u:1 keep in-use"],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const out = confirmAfterAnswer(shown, c.latest);
      assert.deepEqual(brief(out), c.want);
      const go = out.find((p) => p.refs[0] === "go:1")!;
      if (go.decision === "prune") assert.equal(go.lruRank, 1, "the budget's rank is kept");
    });
  }
});

Deno.test("keptSince() lists what was prunable and is not any more", () => {
  const before = [image("a"), image("b"), used("c")];
  const after = [image("a"), image("b", { decision: "keep", reason: "used-during-double-check" })];
  assert.deepEqual(keptSince(before, after).map((p) => p.refs[0]), ["b:1"]);
});

Deno.test("recheckCandidates() drops candidates a fresh pass does not find prunable", async (t) => {
  const candidates = [image("a"), image("b"), image("c")];
  const cases: { name: string; latest: ImagePlan[]; still: string[]; dropped: string[] }[] = [
    {
      name: "all still prunable",
      latest: [image("a"), image("b"), image("c")],
      still: ["a:1", "b:1", "c:1"],
      dropped: [],
    },
    {
      name: "one used, one gone, one re-tagged",
      latest: [used("a"), image("c", { refs: ["c:1", "c:2"] })],
      still: [],
      dropped: ["a:1", "b:1", "c:1"],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const r = recheckCandidates(candidates, c.latest);
      assert.deepEqual(r.still.map((p) => p.refs[0]), c.still);
      assert.deepEqual(r.dropped.map((p) => p.refs[0]), c.dropped);
    });
  }
});

Deno.test("splitByTarget() keeps a re-pointed ref and skips a gone one", () => {
  const row = (ref: string, digest: string): ImageRow => ({
    ref,
    digest,
    type: "",
    size: 0,
    platforms: "",
    labels: new Map(),
  });
  const D = (c: string) => `sha256:${c.repeat(64)}`;
  assert.deepEqual(
    splitByTarget(
      [
        { ref: "same:1", digest: D("a") },
        { ref: "moved:latest", digest: D("b") },
        { ref: "gone:1", digest: D("c") },
      ],
      [row("same:1", D("a")), row("moved:latest", D("e")), row("other:1", D("c"))],
    ),
    { go: ["same:1"], moved: [{ ref: "moved:latest", now: D("e") }], gone: ["gone:1"] },
  );
});
