/**
 * Every --json document ctre prints is valid against its JSON Schema (schemas/*.schema.json,
 * draft 2020-12), checked with ajv (tests/support/json_schema.ts): real outputs from ctre under
 * the shipped permissions against a private, real containerd, and the golden prune document.
 * The validator is shown able to fail first.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCtre, tempStateDir } from "./support/cli.ts";
import { withContainerd } from "./support/containerd.ts";
import { validate, validatorMissing } from "./support/json_schema.ts";

const missing = validatorMissing();
const ignore = missing !== null;
const because = missing === null ? "" : ` (ignored: ${missing})`;
const DAY = 86400;
const GOLDEN = new URL("./testdata/golden/plan.json", import.meta.url);

Deno.test({
  name: `validate() accepts the golden prune document and rejects broken ones${because}`,
  ignore,
  fn: async () => {
    const doc = JSON.parse(await Deno.readTextFile(GOLDEN));
    validate("prune", doc);
    const broken = [
      { ...doc, schemaVersion: 2 },
      { ...doc, images: [{ ...doc.images[0], reason: "bogus" }] },
      { ...doc, images: [{ ...doc.images[0], decision: "keep", reason: "prune" }] },
      { ...doc, totals: { ...doc.totals, surprise: 1 } },
      { ...doc, generatedAt: "yesterday" },
    ];
    for (const b of broken) assert.throws(() => validate("prune", b), /Not a valid prune document/);
  },
});

/** Runs ctre, expects `code`, parses stdout as the one JSON document and validates it. */
async function documentOf(
  name: string,
  args: string[],
  opts: { stateDir: string; address?: string },
  code = 0,
): Promise<Record<string, unknown>> {
  const r = await runCtre(args, opts);
  assert.equal(r.code, code, `ctre ${args.join(" ")}: ${r.stderr}`);
  const doc = JSON.parse(r.stdout);
  validate(name, doc);
  assert.equal(doc.schemaVersion, 1);
  return doc;
}

Deno.test({
  name: `prune, df, status and doctor --json from a real containerd match their schemas${because}`,
  ignore,
  fn: () =>
    withContainerd(async (c) => {
      const stateDir = await tempStateDir();
      const img = (n: string) => `docker.io/library/${n}:1`;
      const old = await c.importImage("default", img("old"), "old");
      const run = await c.importImage("default", img("run"), "run");
      const pause = await c.importImage("k8s.io", "registry.k8s.io/pause:3.9", "pause");
      await c.label("k8s.io", "registry.k8s.io/pause:3.9", "io.cri-containerd.pinned=pinned");
      await c.ageContent("default", [old, run], 30 * DAY);
      await c.ageContent("k8s.io", [pause], 30 * DAY);
      await c.run("default", img("run"), "run");
      const now = Math.floor(Date.now() / 1000);
      await Deno.writeTextFile(
        join(stateDir, "image_starts"),
        `${now - 7200} ${now - 3600} default ${img("run")}\nnot a line\n`,
      );
      const opts = { stateDir, address: c.address };
      const base = ["prune", "--json", "--double-check", "0"];

      const df = await documentOf("df", ["df", "--json"], opts);
      const total = df.total as { images: { count: number; contentBytes: number } };
      assert.equal(total.images.count, 3);
      assert.ok(total.images.contentBytes > 0);
      const dry = await documentOf("prune", [...base, "--dry-run"], opts);
      assert.equal(dry.removal, null);
      const budget = await documentOf(
        "prune",
        [...base, "--dry-run", "--max-store-size", "1"],
        opts,
      );
      assert.ok((budget.images as { lruRank: number | null }[]).some((i) => i.lruRank === 1));
      const forced = await documentOf("prune", [...base, "--force"], opts);
      const removal = forced.removal as { removed: unknown[]; content: unknown[] | null };
      assert.deepEqual(removal.removed, [{ namespace: "default", ref: img("old") }]);
      const disk = forced.disk as { predicted: { contentBytes: number } } | null;
      assert.ok(
        disk !== null && disk.predicted.contentBytes > 0,
        "the forced run says what it frees",
      );
      assert.ok(removal.content !== null && removal.content.length > 0);

      const status = await documentOf("status", ["status", "--json"], { stateDir });
      assert.equal((status.rejected as unknown[]).length, 1);
      const doctor = await documentOf("doctor", ["doctor", "--json"], opts);
      assert.equal(doctor.ok, true);
      const dead = { stateDir, address: join(stateDir, "no.sock") };
      const failing = await documentOf("doctor", ["doctor", "--json"], dead, 1);
      assert.equal(failing.ok, false);
    }),
});
