/**
 * Golden output: the --json document and the --verbose table of a fixed, hand-built plan, and
 * the help texts. A renamed or added field, a changed column or a reworded help line fails
 * here. After checking a deliberate change by eye, rewrite the files named (and only those) with
 * `CTRE_UPDATE_GOLDEN=plan.json,help_prune.txt deno test --allow-all tests/report_test.ts`: each
 * test that rewrote its file fails, saying so, so an update never passes silently; run again
 * without the variable and review the diff.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { ImagePlan } from "../lib/policy/plan.ts";
import { planDocument, planTable, type PruneOutcome } from "../lib/prune/report.ts";
import { runCtre, tempStateDir } from "./support/cli.ts";

const GOLDEN = new URL("./testdata/golden/", import.meta.url);
/** The golden files to rewrite: CTRE_UPDATE_GOLDEN, comma-separated file names. */
const UPDATE = new Set(
  (Deno.env.get("CTRE_UPDATE_GOLDEN") ?? "").split(",").map((n) => n.trim()).filter((n) => n),
);
/** A CI run compares, never rewrites: a golden file rewritten there would make the test pass. */
const CI = ["true", "1"].includes(Deno.env.get("CI") ?? "");

async function golden(name: string, actual: string): Promise<void> {
  const path = fileURLToPath(new URL(name, GOLDEN));
  if (UPDATE.size > 0 && CI) {
    throw new Error(
      "CTRE_UPDATE_GOLDEN is set in a CI run (CI=true): golden files are not rewritten",
    );
  }
  if (UPDATE.has(name)) {
    await Deno.mkdir(fileURLToPath(GOLDEN), { recursive: true });
    await Deno.writeTextFile(path, actual);
    throw new Error(
      `${name} rewritten (CTRE_UPDATE_GOLDEN): review the diff and run again without it`,
    );
  }
  const expected = await Deno.readTextFile(path);
  assert.equal(
    actual,
    expected,
    `${name} differs from the golden file; if the change is intended, rerun with ` +
      `CTRE_UPDATE_GOLDEN=${name} and review the diff`,
  );
}

/** 2026-01-01T00:00:00Z. */
const NOW = 1767225600;
const DAY = 86400;
const MiB = 1024 * 1024;
const digest = (c: string) => `sha256:${c.repeat(64)}`;

const base = {
  lastStart: null,
  lastStop: null,
} as const;

/** One image per reason, across three namespaces, in a disk-pressure run. */
const PLAN: ImagePlan[] = [
  {
    ...base,
    ns: "default",
    digest: digest("a"),
    refs: ["docker.io/library/app:1", "docker.io/library/app:latest"],
    size: 5 * MiB + 123,
    disk: { contentBytes: 5 * MiB + 123, snapshotBytes: 12 * MiB, uniqueBytes: 9 * MiB + 77 },
    ageSeconds: 28 * DAY - 1800,
    ageText: "4 weeks",
    lastStart: NOW - 20 * DAY,
    lastStop: NOW - 20 * DAY + 60,
    decision: "prune",
    reason: "prune",
    lruRank: 1,
    budgetNeeded: true,
  },
  {
    ...base,
    ns: "default",
    digest: digest("b"),
    refs: ["docker.io/library/busybox:1.36"],
    size: 2 * MiB,
    ageSeconds: 35 * DAY - 1800,
    ageText: "5 weeks",
    lastStart: NOW - 3 * DAY,
    decision: "keep",
    reason: "in-use",
    containers: ["c-one", "c-two"],
    users: [{ id: "c-one", how: "name" }, { id: "c-two", how: "lease" }],
  },
  {
    ...base,
    ns: "default",
    digest: digest("c"),
    refs: ["docker.io/library/keepme:2"],
    size: 700 * 1024,
    ageSeconds: 60 * DAY - 1800,
    ageText: "2 months",
    decision: "keep",
    reason: "kept-by-pattern",
    pattern: "docker.io/library/keepme:*",
  },
  {
    ...base,
    ns: "default",
    digest: digest("d"),
    refs: ["docker.io/library/recent:1"],
    size: 1536,
    ageSeconds: 21 * DAY - 1800,
    ageText: "3 weeks",
    lastStart: NOW - 3600,
    decision: "keep",
    reason: "recently-used",
  },
  {
    ...base,
    ns: "default",
    digest: digest("e"),
    refs: ["docker.io/library/young:1"],
    size: 10 * MiB,
    ageSeconds: 3600,
    ageText: "About an hour",
    decision: "keep",
    reason: "too-young",
  },
  {
    ...base,
    ns: "default",
    digest: digest("f"),
    refs: ["docker.io/library/flaky:1"],
    size: 3 * MiB,
    ageSeconds: 30 * DAY - 1800,
    ageText: "4 weeks",
    decision: "keep",
    reason: "used-during-double-check",
  },
  {
    ...base,
    ns: "k8s.io",
    digest: digest("0"),
    refs: ["registry.k8s.io/pause:3.9"],
    size: 300 * 1024,
    ageSeconds: 365 * DAY,
    ageText: "1 year",
    decision: "keep",
    reason: "pinned",
  },
  {
    ...base,
    ns: "k8s.io",
    digest: digest("1"),
    refs: ["registry.example/old:0.1"],
    size: 42 * MiB,
    ageSeconds: 90 * DAY - 1800,
    ageText: "3 months",
    decision: "prune",
    reason: "prune",
    lruRank: 2,
    budgetNeeded: true,
  },
  {
    ...base,
    ns: "k8s.io",
    digest: digest("3"),
    refs: ["registry.example/spare:2"],
    size: 8 * MiB,
    ageSeconds: 21 * DAY - 1800,
    ageText: "3 weeks",
    lastStart: NOW - 15 * DAY,
    decision: "keep",
    reason: "within-budget",
    lruRank: 3,
    budgetNeeded: false,
  },
  {
    ...base,
    ns: "moby",
    digest: digest("2"),
    refs: ["docker.io/library/other:1"],
    size: 1024,
    ageSeconds: null,
    ageText: null,
    decision: "keep",
    reason: "namespace-excluded",
  },
];

/** A forced run: app removed (one ref already gone), old failed, clean-up partly failed. */
const OUTCOME: PruneOutcome = {
  removed: [{ namespace: "default", ref: "docker.io/library/app:1" }],
  missing: [{ namespace: "default", ref: "docker.io/library/app:latest" }],
  failed: [{
    namespace: "k8s.io",
    ref: "registry.example/old:0.1",
    error: "ctr -n k8s.io image rm … exited with code 1: ctr: unable to delete " +
      "registry.example/old:0.1: failed precondition",
  }],
  repointed: [{
    namespace: "default",
    ref: "docker.io/library/latest:latest",
    digest: `sha256:${"c".repeat(64)}`,
  }],
  removedImages: 1,
  reclaimedBytes: 5_456_789,
  removedImageBytes: 5 * MiB + 123,
  contentBytesBefore: 123_456_789,
  contentBytesAfter: 118_000_000,
  containers: { deleted: ["default c-old"], kept: ["default c-one", "default c-two"], errors: [] },
  content: [
    {
      namespace: "default",
      blobsBefore: 12,
      blobsAfter: 9,
      protected: ["docker.io/library/offline:1"],
      error: null,
    },
    {
      namespace: "k8s.io",
      blobsBefore: 4,
      blobsAfter: 4,
      protected: [],
      error: "ctr -n k8s.io content prune references exited with code 1: content digest " +
        "sha256:1111 not found",
    },
  ],
};

const POLICY = {
  minAgeSeconds: 14 * DAY,
  usedWithinSeconds: 14 * DAY,
  doubleCheckSeconds: 15,
  keep: ["docker.io/library/keepme:*"],
  namespaces: ["default", "k8s.io"],
  budget: { kind: "max-store-size", maxBytes: 20_000_000_000 } as const,
};

Deno.test("planDocument of a forced run matches golden/plan.json", async () => {
  const doc = planDocument({
    mode: "force",
    generatedAt: NOW + 0.25,
    policy: POLICY,
    images: PLAN,
    outcome: OUTCOME,
  });
  await golden("plan.json", JSON.stringify(doc, null, 2) + "\n");
});

Deno.test("planDocument of a dry run has no removal and no content totals", () => {
  const doc = planDocument({
    mode: "dry-run",
    generatedAt: NOW,
    policy: POLICY,
    images: PLAN,
    outcome: null,
  }) as { removal: unknown; totals: Record<string, unknown> };
  assert.equal(doc.removal, null);
  assert.equal(doc.totals.removedImages, 0);
  assert.equal(doc.totals.failedRefs, 0);
  assert.equal(doc.totals.reclaimedBytes, 0);
  assert.equal(doc.totals.contentBytesBefore, null);
  assert.equal(doc.totals.contentBytesAfter, null);
  assert.equal(doc.totals.prune, 2);
  assert.equal(doc.totals.keep, 8);
});

Deno.test("planTable matches golden/plan_table.txt", async () => {
  await golden("plan_table.txt", planTable(PLAN).join("\n") + "\n");
});

Deno.test("ctre --help matches golden/help.txt", async () => {
  const stateDir = await tempStateDir();
  try {
    const r = await runCtre(["--help"], { stateDir });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    await golden("help.txt", r.stdout);
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});

for (
  const [command, file] of [
    ["prune", "prune_help.txt"],
    ["df", "df_help.txt"],
    ["record-image-starts", "record_help.txt"],
    ["doctor", "doctor_help.txt"],
    ["status", "status_help.txt"],
    ["completion", "completion_help.txt"],
    ["man", "man_help.txt"],
  ]
) {
  Deno.test(`ctre ${command} --help matches golden/${file}`, async () => {
    const stateDir = await tempStateDir();
    try {
      const r = await runCtre([command!, "--help"], { stateDir });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
      await golden(file!, r.stdout);
    } finally {
      await Deno.remove(stateDir, { recursive: true });
    }
  });
}
