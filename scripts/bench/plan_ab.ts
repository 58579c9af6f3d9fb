// deno-lint-ignore-file no-console
/**
 * A/B of the planning pass on the benchmark's scenario (scenario.ts: 1,050 images in 3
 * namespaces, 215 containers): `ctre prune --dry-run --double-check 0` of another checkout
 * (BASE, e.g. `git archive <commit> | tar -x -C /tmp/base`) and of this one, alternating, each
 * under the shipped permissions; prints the median wall time of each and the ctr processes each
 * pass starts (counted by a ctr wrapper first on PATH).
 *
 *   deno run -A scripts/bench/plan_ab.ts /tmp/base [RUNS]
 *
 * @module
 */
import { join } from "node:path";
import { permissionFlags, RUNTIME_FLAGS } from "../../lib/cli/permissions.ts";
import { TestContainerd } from "../../tests/support/containerd.ts";
import { createContainers, plannedContainers, prepareImages, usageDb } from "./scenario.ts";
import { containerdVersion } from "./measure.ts";

const [base, runsText] = Deno.args;
if (base === undefined) throw new Error("usage: plan_ab.ts BASE_CHECKOUT [RUNS]");
const RUNS = Number(runsText ?? "5");
const ROOT = new URL("../../", import.meta.url).pathname;

/** A `ctr` wrapper dir that appends one line per call to `log`. */
async function counting(log: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "ctre-ab-bin-" });
  const real = new TextDecoder().decode(
    (await new Deno.Command("sh", { args: ["-c", "command -v ctr"] }).output()).stdout,
  ).trim();
  await Deno.writeTextFile(join(dir, "ctr"), `#!/bin/sh\necho x >> ${log}\nexec ${real} "$@"\n`);
  await Deno.chmod(join(dir, "ctr"), 0o755);
  return dir;
}

async function pass(main: string, c: TestContainerd, stateDir: string, bin: string, log: string) {
  await Deno.writeTextFile(log, "");
  const args = [
    "run",
    "--quiet",
    ...RUNTIME_FLAGS,
    ...permissionFlags(stateDir),
    main,
    "prune",
    "--dry-run",
    "--double-check",
    "0",
    "--address",
    c.address,
    "--state-dir",
    stateDir,
  ];
  const t = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    env: { PATH: `${bin}:${Deno.env.get("PATH")}` },
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - t;
  if (out.code !== 0) throw new Error(new TextDecoder().decode(out.stderr));
  const calls = (await Deno.readTextFile(log)).split("\n").filter((l) => l).length;
  return { ms, calls };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const c = await TestContainerd.start();
try {
  const stateDir = await Deno.makeTempDir({ prefix: "ctre-ab-state-" });
  const built = await prepareImages(c, await containerdVersion(), (t) => console.error(t));
  await createContainers(c, plannedContainers());
  await Deno.writeTextFile(
    join(stateDir, "image_starts"),
    usageDb(Date.now() / 1000, built.images),
  );
  const log = join(stateDir, "ctr-calls");
  const bin = await counting(log);
  const sides = { base: join(base, "main.ts"), this: join(ROOT, "main.ts") };
  const result: Record<string, { ms: number[]; calls: number }> = {
    base: { ms: [], calls: 0 },
    this: { ms: [], calls: 0 },
  };
  for (const main of Object.values(sides)) await pass(main, c, stateDir, bin, log); // warm
  for (let i = 0; i < RUNS; i++) {
    for (const [name, main] of Object.entries(sides)) {
      const r = await pass(main, c, stateDir, bin, log);
      result[name]!.ms.push(r.ms);
      result[name]!.calls = r.calls;
      console.error(`${name} ${i + 1}: ${r.ms.toFixed(0)} ms, ${r.calls} ctr`);
    }
  }
  for (const [name, r] of Object.entries(result)) {
    console.log(
      `${name}: median ${median(r.ms).toFixed(0)} ms over ${RUNS}, ${r.calls} ctr processes`,
    );
  }
} finally {
  await c.cleanup();
}
