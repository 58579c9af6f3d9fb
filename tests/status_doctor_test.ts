/**
 * ctre status and ctre doctor, run as operators run them: the CLI under the shipped flags.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { acquireLock } from "../lib/state/lock.ts";
import { runCtre, tempStateDir } from "./support/cli.ts";
import { withContainerd } from "./support/containerd.ts";

Deno.test("ctre status shows the usage DB, its last write and whether the recorder runs", async (t) => {
  const stateDir = await tempStateDir();
  const now = Math.floor(Date.now() / 1000);
  await Deno.writeTextFile(
    join(stateDir, "image_starts"),
    `${now - 7200} ${now - 3600} k8s.io docker.io/library/a:1\n` +
      `${now - 60} ---------- default docker.io/library/b:2\n` +
      "not a line\n",
  );
  await t.step("--json: entries, last write, recorder not running, rejected line", async () => {
    const r = await runCtre(["status", "--json"], { stateDir });
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.deepEqual(
      doc.entries.map((e: { namespace: string; ref: string }) => `${e.namespace} ${e.ref}`),
      ["default docker.io/library/b:2", "k8s.io docker.io/library/a:1"],
    );
    const a = doc.entries[1];
    assert.equal(a.lastStart, now - 7200);
    assert.equal(a.lastStop, now - 3600);
    assert.ok(Math.abs(a.ageSeconds - 3600) < 30, `age ${a.ageSeconds}`);
    assert.equal(doc.recorderRunning, false);
    assert.ok(Math.abs(Date.parse(doc.lastWritten) / 1000 - Date.now() / 1000) < 60);
    assert.equal(doc.rejected.length, 1);
  });
  await t.step("table, with a recorder holding its lock", async () => {
    const lock = await acquireLock(stateDir, "record-image-starts");
    try {
      const r = await runCtre(["status"], { stateDir });
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.split("\n");
      assert.match(lines[0]!, /^NAMESPACE\s+REF\s+LAST START\s+LAST STOP\s+LAST PULL\s+AGE$/);
      assert.match(lines[1]!, /^default\s+docker\.io\/library\/b:2\s+\S+Z\s+-\s+-\s+1m$/);
      assert.match(lines[2]!, /^k8s\.io\s+docker\.io\/library\/a:1\s+\S+Z\s+\S+Z\s+-\s+1h$/);
      assert.match(r.stdout, /2 entries, last written .* ago/);
      assert.match(r.stdout, new RegExp(`Recorder: running \\(pid ${Deno.pid} `));
      assert.match(r.stderr, /line 3 .* is corrupt/);
    } finally {
      lock.release();
    }
  });
  await Deno.remove(stateDir, { recursive: true });
});

Deno.test({
  name: "ctre doctor on a healthy node exits 0 and reports containerd's version",
  async fn() {
    await withContainerd(async (c) => {
      const stateDir = await tempStateDir();
      const r = await runCtre(["doctor", "--json"], { address: c.address, stateDir });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const doc = JSON.parse(r.stdout);
      assert.equal(doc.ok, true);
      const check = (name: string) => doc.checks.find((x: { name: string }) => x.name === name);
      assert.match(check("containerd").detail, /answers at .*, version \d+\.\d+\.\d+/);
      assert.match(check("ctr").detail, /^ctr from PATH: ctr /);
      assert.equal(check("state dir").status, "ok");
      assert.equal(check("recorder").status, "warn");
      const text = await runCtre(["doctor"], { address: c.address, stateDir });
      assert.equal(text.code, 0);
      assert.match(text.stdout, /^ok\s+containerd\s+answers at/m);
      await Deno.remove(stateDir, { recursive: true });
    });
  },
});
