/**
 * The metrics file: Prometheus text format, checked by a strict parser of our own and by
 * Prometheus' own promtool, which scripts/setup.sh installs. Without promtool these tests fail
 * and say so: a check that silently does not run proves nothing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Family, formatMetrics, writeMetrics } from "../lib/state/metrics_file.ts";
import { runCtre, tempStateDir } from "./support/cli.ts";
import { withContainerd } from "./support/containerd.ts";

const PROMTOOL = "/opt/ctre-test-tools/promtool";
const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*",?)*\})? (\S+)( -?\d+)?$/;

/** A strict reader of the text exposition format; throws on anything it does not allow. */
export function checkExposition(text: string): Map<string, number> {
  assert.ok(text.endsWith("\n"), "ends with a newline");
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const series = new Map<string, number>();
  const finished = new Set<string>();
  let current = "";
  for (const [i, line] of text.slice(0, -1).split("\n").entries()) {
    const where = `line ${i + 1}: "${line}"`;
    assert.notEqual(line, "", `${where}: empty line`);
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      assert.match(name, NAME, where);
      if (name !== current) {
        assert.ok(!finished.has(name), `${where}: family ${name} is split`);
        if (current) finished.add(current);
        current = name;
      }
      if (kind === "TYPE") {
        assert.ok(!types.has(name), `${where}: second TYPE`);
        assert.match(rest, /^(counter|gauge|histogram|summary|untyped)$/, where);
        types.set(name, rest);
      } else {
        assert.ok(!helps.has(name), `${where}: second HELP`);
        helps.add(name);
      }
      continue;
    }
    assert.ok(!line.startsWith("#"), `${where}: unknown comment`);
    const m = SAMPLE.exec(line);
    assert.ok(m, `${where}: not a sample line`);
    const [, name, labels, value] = m as unknown as [string, string, string | undefined, string];
    assert.equal(name, current, `${where}: sample outside its family`);
    assert.ok(types.has(name), `${where}: sample before TYPE`);
    if (types.get(name) === "counter") assert.match(name, /_total$/, `${where}: counter name`);
    assert.ok(/^(NaN|[+-]Inf|-?\d+(\.\d+)?([eE][+-]?\d+)?)$/.test(value), `${where}: value`);
    const key = `${name}${labels ?? ""}`;
    assert.ok(!series.has(key), `${where}: duplicate series`);
    series.set(key, Number(value));
  }
  return series;
}

/** promtool's complaints about `text` ("" when it accepts it). Throws if promtool is missing. */
async function promtool(text: string): Promise<string> {
  try {
    await Deno.stat(PROMTOOL);
  } catch (e) {
    throw new Error(
      `promtool is required at ${PROMTOOL} to check the metrics format, and it is missing ` +
        `(${e instanceof Error ? e.message : e}): run scripts/setup.sh, which extracts it from ` +
        `Debian's prometheus package`,
    );
  }
  const child = new Deno.Command(PROMTOOL, {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(text));
  await w.close();
  const out = await child.output();
  const d = new TextDecoder();
  return out.code === 0 ? "" : `${d.decode(out.stdout)}${d.decode(out.stderr)}`;
}

const families: Family[] = [
  { name: "ctre_x_total", help: "A counter.", type: "counter", samples: [{ value: 3 }] },
  {
    name: "ctre_y",
    help: "A gauge with \\ and\nnewline.",
    type: "gauge",
    samples: [{ labels: { reason: 'in"use\\x' }, value: 1.5 }, {
      labels: { reason: "b" },
      value: 0,
    }],
  },
];

Deno.test("formatMetrics() writes text the strict reader and promtool accept", async () => {
  const text = formatMetrics(families);
  const series = checkExposition(text);
  assert.equal(series.get("ctre_x_total"), 3);
  assert.equal(series.get('ctre_y{reason="in\\"use\\\\x"}'), 1.5);
  assert.equal(await promtool(text), "");
  assert.throws(
    () => formatMetrics([{ ...families[0]!, name: "bad-name" }]),
    /Invalid metric name/,
  );
});

Deno.test("promtool() fails loudly on text Prometheus rejects (so a pass means something)", async () => {
  assert.match(await promtool("# TYPE a gauge\na one\n"), /\S/);
});

Deno.test("checkExposition() rejects what Prometheus rejects", () => {
  assert.throws(() => checkExposition("a 1\n"), /outside its family/);
  assert.throws(() => checkExposition("# HELP a x\na 1\n"), /before TYPE/);
  assert.throws(() => checkExposition("# TYPE a gauge\na 1\na 2\n"), /duplicate/);
  assert.throws(() => checkExposition("# TYPE a counter\na 1\n"), /counter name/);
  assert.throws(() => checkExposition("# TYPE a gauge\na one\n"), /value/);
  assert.throws(() => checkExposition("# TYPE a gauge\na 1"), /newline/);
});

Deno.test("writeMetrics() keeps the other writer's families", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctre-metrics-" });
  await writeMetrics(dir, "ctre_x", [families[0]!]);
  await writeMetrics(dir, "ctre_y", [families[1]!]);
  await writeMetrics(dir, "ctre_x", [{ ...families[0]!, samples: [{ value: 4 }] }]);
  const series = checkExposition(await Deno.readTextFile(join(dir, "metrics", "ctre.prom")));
  assert.equal(series.get("ctre_x_total"), 4);
  assert.equal(series.get('ctre_y{reason="b"}'), 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "ctre prune --metrics and the recorder write one valid file on a real containerd",
  async fn() {
    await withContainerd(async (c) => {
      const stateDir = await tempStateDir();
      const opts = { address: c.address, stateDir };
      await c.importImage("default", "docker.io/library/gone:1", "gone");
      await c.importImage("default", "docker.io/library/used:1", "used");
      await c.run("default", "docker.io/library/used:1", "c-used");
      const r = await runCtre(
        ["prune", "-f", "--metrics", "--min-age", "0", "--double-check", "0"],
        opts,
      );
      assert.equal(r.code, 0, r.stderr);
      const path = join(stateDir, "metrics", "ctre.prom");
      let text = await Deno.readTextFile(path);
      let series = checkExposition(text);
      assert.equal(series.get("ctre_prune_images_pruned"), 1);
      assert.equal(series.get('ctre_prune_images_kept{reason="in-use"}'), 1);
      assert.equal(series.get("ctre_prune_success"), 1);
      assert.ok((series.get('ctre_prune_reclaimed_bytes{kind="content"}') ?? 0) > 0);
      // gone:1 was unpacked: its snapshot went too (by ctr snapshot usage -b).
      assert.ok((series.get('ctre_prune_reclaimed_bytes{kind="snapshot"}') ?? 0) > 0, text);
      // Not permitted to statfs containerd's root: no filesystem sample rather than a false 0.
      assert.equal(series.get('ctre_prune_reclaimed_bytes{kind="filesystem"}'), undefined);
      assert.ok(
        (series.get('ctre_node_image_bytes{namespace="default",kind="snapshot"}') ?? 0) > 0,
      );
      assert.ok(series.has('ctre_node_reclaimable_bytes{namespace="default"}'), text);
      assert.ok((series.get("ctre_prune_content_store_bytes") ?? 0) > 0, text);
      assert.equal(await promtool(text), "");

      // The recorder adds its families to the same file.
      const { spawnCtre } = await import("./support/cli.ts");
      const rec = spawnCtre(["record-image-starts", "--metrics", "--flush-interval", "1s"], opts);
      // Ready and flushed once the file counts a start and a stop: until then, one more run
      // (one started before it listened is not seen). Polled, never a fixed sleep.
      const deadline = Date.now() + 30_000;
      for (let n = 1;; n++) {
        await c.runToExit("default", "docker.io/library/used:1", `c-once-${n}`);
        const seen = checkExposition(await Deno.readTextFile(path));
        if ((seen.get("ctre_recorder_events_recorded_total") ?? 0) >= 2) break;
        if (Date.now() > deadline) assert.fail("the recorder never wrote its metrics");
        await new Promise((res) => setTimeout(res, 250));
      }
      rec.kill("SIGTERM");
      assert.equal((await rec.output()).code, 0);
      text = await Deno.readTextFile(path);
      series = checkExposition(text);
      assert.ok((series.get("ctre_recorder_events_recorded_total") ?? 0) >= 2, text);
      assert.ok((series.get("ctre_recorder_last_event_timestamp_seconds") ?? 0) > 0);
      assert.equal(series.get("ctre_prune_images_pruned"), 1, "prune's families kept");
      assert.equal(await promtool(text), "");
      await Deno.remove(stateDir, { recursive: true });
    });
  },
});
