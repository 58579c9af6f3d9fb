/** The disk-pressure decisions of budget.ts, as tables. */
import assert from "node:assert/strict";
import {
  applyBudget,
  budgetCandidates,
  lruOrder,
  nextBatch,
  takeUntil,
  updateRatio,
} from "../lib/policy/budget.ts";
import type { ImagePlan } from "../lib/policy/plan.ts";

const MB = 1_000_000;

function image(name: string, over: Partial<ImagePlan> = {}): ImagePlan {
  return {
    ns: "default",
    digest: `sha256:${name.padEnd(64, "0")}`,
    refs: [`docker.io/library/${name}:1`],
    size: MB,
    ageSeconds: 30 * 86400,
    ageText: "4 weeks",
    lastStart: null,
    lastStop: null,
    decision: "prune",
    reason: "prune",
    ...over,
  };
}

const names = (images: ImagePlan[]) => images.map((p) => p.refs[0]!.split("/")[2]!.split(":")[0]);

Deno.test("lruOrder() puts never-used first, then older use, then older content", async (t) => {
  const cases: { name: string; images: ImagePlan[]; want: string[] }[] = [
    {
      name: "never used before used",
      images: [image("used", { lastStart: 100 }), image("never")],
      want: ["never", "used"],
    },
    {
      name: "older use first; the later of start and stop counts",
      images: [
        image("b", { lastStart: 100, lastStop: 500 }),
        image("a", { lastStart: 300 }),
      ],
      want: ["a", "b"],
    },
    {
      name: "equal use: older content first",
      images: [image("young", { ageSeconds: 10 }), image("old", { ageSeconds: 99 })],
      want: ["old", "young"],
    },
    {
      name: "all equal: by namespace, then ref",
      images: [image("b"), image("a", { ns: "z" }), image("a")],
      want: ["a", "b", "a"],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.deepEqual(names(lruOrder(c.images)), c.want));
  }
});

Deno.test("takeUntil() takes the shortest prefix covering the bytes", async (t) => {
  const list = [image("a"), image("b"), image("c")];
  for (
    const [over, want] of [[0, []], [1, ["a"]], [MB, ["a"]], [MB + 1, ["a", "b"]], [
      9 * MB,
      ["a", "b", "c"],
    ]] as const
  ) {
    await t.step(`${over} bytes`, () => assert.deepEqual(names(takeUntil(list, over)), want));
  }
});

Deno.test("applyBudget() keeps as within-budget what the estimate does not need", async (t) => {
  const plan = [
    image("c", { lastStart: 300 }),
    image("kept", { decision: "keep", reason: "in-use" }),
    image("a"),
    image("b", { lastStart: 100 }),
  ];
  const cases: { over: number; need: string[]; rank: Record<string, number> }[] = [
    { over: 0, need: [], rank: { a: 1, b: 2, c: 3 } },
    { over: 1, need: ["a"], rank: { a: 1, b: 2, c: 3 } },
    { over: MB + 1, need: ["a", "b"], rank: { a: 1, b: 2, c: 3 } },
    { over: 10 * MB, need: ["a", "b", "c"], rank: { a: 1, b: 2, c: 3 } },
  ];
  for (const c of cases) {
    await t.step(`over by ${c.over}`, () => {
      const out = applyBudget(plan, c.over);
      assert.deepEqual(names(out), ["c", "kept", "a", "b"], "plan order is kept");
      for (const p of out) {
        const n = names([p])[0]!;
        if (n === "kept") {
          assert.deepEqual(p, plan[1]);
          continue;
        }
        assert.equal(p.lruRank, c.rank[n]);
        assert.equal(p.budgetNeeded, c.need.includes(n));
        assert.equal(p.decision, c.need.includes(n) ? "prune" : "keep");
        assert.equal(p.reason, c.need.includes(n) ? "prune" : "within-budget");
      }
    });
  }
});

Deno.test("budgetCandidates() forced: every prunable image; asked: only those listed", async (t) => {
  const plan = [
    image("listed"),
    image("spare", { decision: "keep", reason: "within-budget" }),
    image("used", { decision: "keep", reason: "in-use" }),
  ];
  for (
    const [mode, want] of [["force", ["listed", "spare"]], ["ask", ["listed"]], ["dry-run", [
      "listed",
    ]]] as const
  ) {
    await t.step(mode, () => assert.deepEqual(names(budgetCandidates(plan, mode)), want));
  }
});

Deno.test("nextBatch() is one image until the ratio is known", async (t) => {
  const left = [image("a"), image("b"), image("c")];
  const cases: { ratio: number | null; over: number; want: string[] }[] = [
    { ratio: null, over: 10 * MB, want: ["a"] },
    { ratio: 1, over: 2 * MB, want: ["a", "b"] },
    { ratio: 2, over: 2 * MB, want: ["a"] },
    { ratio: 1, over: 2 * MB + 1, want: ["a", "b", "c"] },
  ];
  for (const c of cases) {
    await t.step(`ratio ${c.ratio}, over ${c.over}`, () => {
      assert.deepEqual(names(nextBatch(left, c.over, c.ratio)), c.want);
    });
  }
});

Deno.test("updateRatio() is freed over estimated, never below 1", async (t) => {
  const cases: { batch: ImagePlan[]; freed: number; ratio: number | null; want: number | null }[] =
    [
      { batch: [image("a")], freed: 3 * MB, ratio: null, want: 3 },
      { batch: [image("a"), image("b")], freed: MB, ratio: 2, want: 1 },
      { batch: [image("a")], freed: -5, ratio: null, want: 1 },
      { batch: [image("a", { size: 0 })], freed: MB, ratio: null, want: null },
      { batch: [image("a", { size: 0 })], freed: MB, ratio: 4, want: 4 },
    ];
  for (const [i, c] of cases.entries()) {
    await t.step(`case ${i + 1}`, () => {
      assert.equal(updateRatio(c.batch, c.freed, c.ratio), c.want);
    });
  }
});
