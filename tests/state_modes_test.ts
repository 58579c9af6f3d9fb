/**
 * File modes in the state dir: node_exporter (an unprivileged user) can read the metrics, nobody
 * but root can read the usage DB or open a lock, whatever the umask ctre runs under.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { acquireLock } from "../lib/state/lock.ts";
import { writeMetrics } from "../lib/state/metrics_file.ts";
import { writeAtomic } from "../lib/state/state_files.ts";
import { tempStateDir } from "./support/cli.ts";

async function mode(path: string): Promise<string> {
  return ((await Deno.stat(path)).mode! & 0o777).toString(8);
}

async function underUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const old = Deno.umask(mask);
  try {
    return await fn();
  } finally {
    Deno.umask(old);
  }
}

for (const mask of [0o077, 0o022, 0o000]) {
  Deno.test(`umask ${mask.toString(8).padStart(3, "0")}: metrics 0755/0644, DB and locks 0600`, async () => {
    const stateDir = await tempStateDir();
    try {
      await underUmask(mask, async () => {
        await writeMetrics(stateDir, "ctre_test_", [
          { name: "ctre_test_up", help: "test", type: "gauge", samples: [{ value: 1 }] },
        ]);
        await writeAtomic(join(stateDir, "image_starts"), "");
        (await acquireLock(stateDir, "prune")).release();
      });
      assert.equal(await mode(join(stateDir, "metrics")), "755");
      assert.equal(await mode(join(stateDir, "metrics/ctre.prom")), "644");
      assert.equal(await mode(join(stateDir, "metrics/.lock")), "600");
      assert.equal(await mode(join(stateDir, "image_starts")), "600");
      assert.equal(await mode(join(stateDir, "prune.lock")), "600");
    } finally {
      await Deno.remove(stateDir, { recursive: true });
    }
  });
}

Deno.test("a metrics file written 0600 by an older ctre becomes 0644 on the next write", async () => {
  const stateDir = await tempStateDir();
  try {
    await Deno.mkdir(join(stateDir, "metrics"), { mode: 0o700 });
    await Deno.writeTextFile(join(stateDir, "metrics/ctre.prom"), "", { mode: 0o600 });
    await Deno.chmod(join(stateDir, "metrics"), 0o700);
    await writeMetrics(stateDir, "ctre_test_", []);
    assert.equal(await mode(join(stateDir, "metrics")), "755");
    assert.equal(await mode(join(stateDir, "metrics/ctre.prom")), "644");
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});
