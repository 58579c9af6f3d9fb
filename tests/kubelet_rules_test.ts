/**
 * Kubernetes' own rules, without a process: pulls as use, pin memory, --keep-latest (the pure
 * planner and its files), their report text, the flags, the recorder's image events and
 * doctor's k3s/RKE2 socket probe (typed fake containerd).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseCommand } from "../lib/cli/cli.ts";
import { diagnose, K3S_SOCKET, k3sSocketCheck } from "../lib/ops/doctor.ts";
import { UsageError } from "../lib/core/errors.ts";
import type { NamespaceSnapshot } from "../lib/core/containerd.ts";
import type { ContentBlob, ImageRow } from "../lib/core/containerd.ts";
import { newestPerRepository } from "../lib/policy/keep_latest.ts";
import { loadExtras, rememberPins } from "../lib/prune/plan_inputs.ts";
import {
  expirePins,
  formatPinMemory,
  observePins,
  parsePinMemory,
  type PinEntry,
  rememberedSince,
} from "../lib/state/pin_memory.ts";
import { type Plan, type PlanExtras, planNamespace, type Policy } from "../lib/policy/plan.ts";
import {
  expirePulls,
  formatPullDb,
  lastPullOf,
  parsePullDb,
  recordPull,
} from "../lib/state/pull_db.ts";
import { record, Recorder } from "../lib/recorder/recorder.ts";
import { planDocument, planTable } from "../lib/prune/report.ts";
import { isoTime } from "../lib/core/text.ts";
import { usageKey } from "../lib/state/line_file.ts";
import type { Usage } from "../lib/state/usage_db.ts";
import { eventStream, exitError, FakeContainerd } from "./support/fake_containerd.ts";
import { runCtre, tempStateDir } from "./support/cli.ts";
import { FakeIo } from "./support/fake_io.ts";

const DAY = 86400;
const NOW = 1_800_000_000;
const NS = "k8s.io";
const POLICY: Policy = { now: NOW, minAge: 14 * DAY, usedWithin: 14 * DAY, keep: [] };

/** A valid digest made of the hex code of `c`, repeated. */
function digest(c: string): string {
  return `sha256:${c.charCodeAt(0).toString(16).padStart(2, "0").repeat(32)}`;
}

function image(ref: string, d: string, labels: Record<string, string> = {}): ImageRow {
  return {
    ref,
    type: "application/vnd.oci.image.manifest.v1+json",
    digest: d,
    size: 1000,
    platforms: "linux/amd64",
    labels: new Map(Object.entries(labels)),
  };
}

function blob(d: string, ageSeconds: number): ContentBlob {
  return { digest: d, size: 500, ageSeconds, ageText: "x", labels: new Map() };
}

function snapshot(images: ImageRow[], ages: Record<string, number> = {}, ns = NS) {
  const digests = [...new Set(images.map((i) => i.digest))];
  const snap: NamespaceSnapshot = {
    ns,
    images,
    containers: [],
    content: new Map(digests.map((d) => [d, blob(d, ages[d] ?? 30 * DAY)])),
  };
  return snap;
}

function plan(
  snap: NamespaceSnapshot,
  extras: PlanExtras,
  usage: [string, Usage][] = [],
): Plan {
  return planNamespace(snap, new Map(usage), POLICY, extras);
}

function decisions(p: Plan): Record<string, string> {
  return Object.fromEntries(p.images.map((i) => [i.refs[0]!, i.reason]));
}

// ---------------------------------------------------------------------------------------------
// Pulls

Deno.test("planNamespace() keeps an image pulled within --used-within as recently-used", () => {
  const snap = snapshot([
    image("r/a:1", digest("a")),
    image("r/a@" + digest("a"), digest("a")),
    image("r/b:1", digest("b")),
    image("r/c:1", digest("c")),
  ]);
  const pulls = new Map([
    // a pull of another ref of the same digest counts for the whole image
    [usageKey(NS, "r/a@" + digest("a")), NOW - 60],
    [usageKey(NS, "r/b:1"), NOW - 15 * DAY], // too long ago
    [usageKey("default", "r/c:1"), NOW - 60], // another namespace's pull
  ]);
  const p = plan(snap, { pulls });
  assert.deepEqual(decisions(p), { "r/a:1": "recently-used", "r/b:1": "prune", "r/c:1": "prune" });
  const a = p.images.find((i) => i.refs[0] === "r/a:1")!;
  assert.equal(a.lastPull, NOW - 60);
  assert.equal(p.images.find((i) => i.refs[0] === "r/c:1")!.lastPull, undefined);
  // JSON and table show it
  const doc = planDocument({
    mode: "dry-run",
    generatedAt: NOW,
    policy: {
      minAgeSeconds: 0,
      usedWithinSeconds: 0,
      doubleCheckSeconds: 0,
      keep: [],
      namespaces: [],
      budget: null,
    },
    images: p.images,
    outcome: null,
  }) as { images: { refs: string[]; lastPull: number | null }[] };
  assert.deepEqual(doc.images.map((i) => [i.refs[0], i.lastPull]), [
    ["r/a:1", NOW - 60],
    ["r/b:1", NOW - 15 * DAY],
    ["r/c:1", null],
  ]);
  assert.ok(planTable(p.images)[1]!.endsWith(`recently-used ${isoTime(NOW - 60)}`));
});

Deno.test("pull_db: parse, format, merge, expire; corrupt lines set aside", () => {
  const db = parsePullDb(
    `${NOW} k8s.io r/a:1\n${NOW - 5} k8s.io r/a:1\nbad line here too\n1 2 3 4\n` +
      `x k8s.io r/b:1\n${NOW} -bad r/b:1\n${NOW - 100} default r/b:1\r\n`,
  );
  assert.deepEqual([...db.entries], [[usageKey(NS, "r/a:1"), NOW], [
    usageKey("default", "r/b:1"),
    NOW - 100,
  ]]);
  assert.deepEqual(db.rejected.map((r) => r.lineNo), [3, 4, 5, 6]);
  assert.equal(formatPullDb(db.entries), `${NOW - 100} default r/b:1\n${NOW} k8s.io r/a:1\n`);
  assert.equal(recordPull(db.entries, NS, "r/a:1", NOW - 1000), true);
  assert.equal(db.entries.get(usageKey(NS, "r/a:1")), NOW, "an older pull never moves it back");
  assert.equal(recordPull(db.entries, NS, "bad ref", NOW), false);
  assert.equal(lastPullOf(db.entries, NS, ["r/x", "r/a:1"]), NOW);
  assert.equal(expirePulls(db.entries, NOW - 50), 1);
  assert.deepEqual([...db.entries.keys()], [usageKey(NS, "r/a:1")]);
});

// ---------------------------------------------------------------------------------------------
// Pin memory

const PAUSE = "registry.k8s.io/pause:3.9";

function pin(ref: string, d: string, firstSeen: number, lastSeen: number, ns = NS): PinEntry {
  return { ns, ref, digest: d, firstSeen, lastSeen };
}

Deno.test("planNamespace() keeps an image remembered pinned for --pin-memory after its label is gone", async (t) => {
  const snap = snapshot([image(PAUSE, digest("p")), image("r/other:1", digest("o"))]);
  const entry = pin(PAUSE, digest("p"), NOW - 40 * DAY, NOW - 10 * DAY);
  const pins = new Map([[usageKey(NS, PAUSE), entry]]);
  await t.step("within --pin-memory: pinned, with the time it was first seen pinned", () => {
    const p = plan(snap, { pins, pinMemory: 30 * DAY });
    assert.deepEqual(decisions(p), { [PAUSE]: "pinned", "r/other:1": "prune" });
    const kept = p.images[1]!;
    assert.equal(kept.refs[0], PAUSE);
    assert.equal(kept.pinnedRememberedSince, NOW - 40 * DAY);
    assert.ok(
      planTable(p.images)[2]!.endsWith(`pinned (remembered since ${isoTime(NOW - 40 * DAY)})`),
    );
  });
  await t.step("last seen longer ago than --pin-memory: goes", () => {
    const p = plan(snap, { pins, pinMemory: 9 * DAY });
    assert.deepEqual(decisions(p), { [PAUSE]: "prune", "r/other:1": "prune" });
  });
  await t.step("default --pin-memory is 30 days", () => {
    assert.deepEqual(decisions(plan(snap, { pins })), { [PAUSE]: "pinned", "r/other:1": "prune" });
  });
  await t.step("remembered by digest when the ref is new, by ref when the digest is", () => {
    const byDigest = snapshot([image("r/renamed:1", digest("p"))]);
    assert.deepEqual(decisions(plan(byDigest, { pins })), { "r/renamed:1": "pinned" });
    const byRef = snapshot([image(PAUSE, digest("q"))]);
    assert.deepEqual(decisions(plan(byRef, { pins })), { [PAUSE]: "pinned" });
  });
  await t.step("only in its own namespace", () => {
    const other = snapshot([image(PAUSE, digest("p"))], {}, "default");
    assert.deepEqual(decisions(plan(other, { pins })), { [PAUSE]: "prune" });
  });
  await t.step("a label still there says plain pinned (no remembered time)", () => {
    const labelled = snapshot([image(PAUSE, digest("p"), { "io.cattle.k3s.pinned": "true" })]);
    const p = plan(labelled, { pins });
    assert.equal(p.images[0]!.reason, "pinned");
    assert.equal(p.images[0]!.pinnedRememberedSince, undefined);
  });
});

Deno.test("pin_memory: observe, expire, remembered, parse/format round trip, corrupt lines", () => {
  const entries = new Map<string, PinEntry>();
  const pinned = [{ ns: NS, digest: digest("p"), refs: [PAUSE, "sha256:" + "c".repeat(64)] }];
  assert.equal(observePins(entries, pinned, NOW - 100), true);
  assert.equal(observePins(entries, pinned, NOW - 100), false, "nothing new");
  assert.equal(observePins(entries, pinned, NOW), true, "last seen moves on");
  const e = entries.get(usageKey(NS, PAUSE))!;
  assert.deepEqual([e.firstSeen, e.lastSeen], [NOW - 100, NOW]);
  const text = formatPinMemory(entries);
  assert.equal(text.split("\n")[0], `${NOW - 100} ${NOW} ${NS} ${digest("p")} ${PAUSE}`);
  const back = parsePinMemory(text + "garbage\n1 2 ns notadigest ref\n");
  assert.deepEqual(back.entries, entries);
  assert.deepEqual(back.rejected.map((r) => r.lineNo), [3, 4]);
  assert.equal(rememberedSince(entries, NS, digest("z"), [PAUSE], NOW - 1), NOW - 100);
  assert.equal(rememberedSince(entries, NS, digest("z"), ["x"], NOW - 1), null);
  assert.equal(rememberedSince(entries, NS, digest("p"), [], NOW + 1), null, "expired");
  assert.equal(expirePins(entries, NOW + 1), 2);
  assert.equal(entries.size, 0);
});

Deno.test("rememberPins() writes <state-dir>/pinned atomically, sets corrupt lines aside, forgets after --pin-memory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctre-pins-" });
  try {
    const path = join(dir, "pinned");
    await Deno.writeTextFile(path, "corrupt\n");
    const labelled = snapshot([
      image(PAUSE, digest("p"), { "io.cri-containerd.pinned": "pinned" }),
      image("r/k3s:1", digest("k"), { "io.cattle.k3s.pinned": "x" }),
      image("r/no:1", digest("n"), { "io.cri-containerd.pinned": "no" }),
    ]);
    await rememberPins(dir, [labelled], NOW, 30 * DAY);
    assert.equal(
      await Deno.readTextFile(path),
      `${NOW} ${NOW} ${NS} ${digest("k")} r/k3s:1\n${NOW} ${NOW} ${NS} ${digest("p")} ${PAUSE}\n`,
    );
    assert.match(await Deno.readTextFile(`${path}.rejected`), /line 1: .*\ncorrupt\n/);
    // The label is gone; a later prune still protects it, then forgets it after --pin-memory.
    const gone = snapshot([image(PAUSE, digest("p")), image("r/k3s:1", digest("k"))]);
    const { extras } = await loadExtras(dir, { pinMemory: 30 * DAY });
    assert.deepEqual(decisions(planNamespace(gone, new Map(), POLICY, extras)), {
      [PAUSE]: "pinned",
      "r/k3s:1": "pinned",
    });
    await rememberPins(dir, [gone], NOW + 31 * DAY, 30 * DAY);
    assert.equal(await Deno.readTextFile(path), "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// --keep-latest

Deno.test("newestPerRepository() and planNamespace() keep exactly the N newest of each repository", async (t) => {
  const ages: Record<string, number> = {
    [digest("1")]: 40 * DAY,
    [digest("2")]: 30 * DAY,
    [digest("3")]: 20 * DAY,
    [digest("4")]: 20 * DAY, // tie with 3: the most recently used wins
    [digest("b")]: 50 * DAY,
  };
  const snap = snapshot([
    image("r/a:1", digest("1")),
    image("r/a:2", digest("2")),
    image("r/a:3", digest("3")),
    image("r/a:4", digest("4")),
    image("r/a@" + digest("4"), digest("4")),
    image("sha256:" + "f".repeat(64), digest("4")),
    image("r/b:1", digest("b")),
  ], ages);
  await t.step("N = 2", () => {
    const p = plan(snap, { keepLatest: 2 }, [[usageKey(NS, "r/a:3"), {
      start: NOW - 30 * DAY,
      stop: null,
    }]]);
    assert.deepEqual(decisions(p), {
      "r/a:1": "prune",
      "r/a:2": "prune",
      "r/a:3": "kept-latest",
      "r/a:4": "kept-latest",
      "r/b:1": "kept-latest",
    });
  });
  await t.step("N = 1: the tie goes to the more recently used", () => {
    const p = plan(snap, { keepLatest: 1 }, [[usageKey(NS, "r/a:3"), {
      start: NOW - 30 * DAY,
      stop: null,
    }]]);
    assert.equal(decisions(p)["r/a:3"], "kept-latest");
    assert.equal(decisions(p)["r/a:4"], "prune");
  });
  await t.step("0 or absent: off", () => {
    assert.equal(Object.values(decisions(plan(snap, {}))).filter((r) => r !== "prune").length, 0);
    assert.equal(newestPerRepository([], 0).size, 0);
  });
  await t.step("an unknown content age counts as newest", () => {
    const kept = newestPerRepository([
      { digest: "x", refs: ["r/x:1"], ageSeconds: 5, lastUse: null },
      { digest: "y", refs: ["r/x:2"], ageSeconds: null, lastUse: null },
    ], 1);
    assert.deepEqual([...kept], ["y"]);
  });
  await t.step("in-use and pinned keep their own reason; they count among the N", () => {
    const s = snapshot([
      image("r/a:1", digest("1")),
      image("r/a:3", digest("3"), { "io.cattle.k3s.pinned": "1" }),
      image("r/a:2", digest("2")),
    ], ages);
    assert.deepEqual(decisions(plan(s, { keepLatest: 2 })), {
      "r/a:1": "prune",
      "r/a:2": "kept-latest",
      "r/a:3": "pinned",
    });
  });
  await t.step("per namespace", () => {
    const other = snapshot([image("r/a:1", digest("1"))], ages, "default");
    assert.deepEqual(decisions(plan(other, { keepLatest: 2 })), { "r/a:1": "kept-latest" });
  });
});

// ---------------------------------------------------------------------------------------------
// Flags

Deno.test("parseCommand() reads --keep-latest, --pin-memory and --cleanup-kubelet-containers", () => {
  const cmd = parseCommand([
    "prune",
    "--keep-latest",
    "3",
    "--pin-memory",
    "7d",
    "--cleanup-kubelet-containers",
  ]);
  if (cmd.kind !== "prune") throw new Error(`parsed as ${cmd.kind}, not prune`);
  assert.equal(cmd.prune.keepLatest, 3);
  assert.equal(cmd.prune.pinMemory, 7 * DAY);
  assert.equal(cmd.prune.cleanupKubeletContainers, true);
  const d = parseCommand(["prune"]);
  if (d.kind !== "prune") throw new Error(`parsed as ${d.kind}, not prune`);
  assert.deepEqual(
    [d.prune.keepLatest, d.prune.pinMemory, d.prune.cleanupKubeletContainers],
    [0, 30 * DAY, false],
  );
  for (const bad of [["--keep-latest", "-1"], ["--keep-latest", "two"], ["--pin-memory", "x"]]) {
    assert.throws(() => parseCommand(["prune", ...bad]), UsageError, bad.join(" "));
  }
});

// ---------------------------------------------------------------------------------------------
// Recorder

Deno.test("Recorder records /images/create and /images/update as pulls, in image_pulls only", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctre-pulls-" });
  try {
    const io = new FakeIo({ now: NOW });
    const opts = {
      stateDir: dir,
      quiet: false,
      flushInterval: 1,
      keepWindow: 14 * DAY,
      metrics: false,
    };
    const rec = new Recorder(new FakeContainerd(), opts, io, new Map());
    const event = (topic: string, payload: Record<string, unknown>) =>
      rec.receive({ time: NOW + 0.5, ns: "k8s.io", topic, payload });
    await event("/images/create", {
      name: "r/a:1",
      labels: { "io.cri-containerd.image": "managed" },
    });
    await event("/images/update", { name: "r/a:1" });
    await event("/images/create", { name: "bad name" });
    await event("/images/delete", { name: "r/a:1" });
    assert.deepEqual([...rec.pulls], [[usageKey(NS, "r/a:1"), NOW]]);
    assert.equal(rec.entries.size, 0, "a pull is not a start");
    await rec.flush();
    assert.equal(await Deno.readTextFile(join(dir, "image_pulls")), `${NOW} k8s.io r/a:1\n`);
    await assert.rejects(Deno.stat(join(dir, "image_starts")), Deno.errors.NotFound);
    assert.match(io.stderr.text, /not recording "k8s.io" "bad name"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("record() sets corrupt lines of image_pulls aside and keeps the good ones", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctre-pulls-" });
  try {
    await Deno.writeTextFile(join(dir, "image_pulls"), `${NOW - 5} k8s.io r/a:1\nnot a pull\n`);
    const starts = `${NOW - 9} ---------- k8s.io r/a:1\n`;
    await Deno.writeTextFile(join(dir, "image_starts"), starts);
    const controller = new AbortController();
    const containerd = new FakeContainerd();
    containerd.events = () => {
      controller.abort();
      return eventStream([]);
    };
    const io = new FakeIo({ now: NOW });
    const opts = {
      stateDir: dir,
      quiet: true,
      flushInterval: 3600,
      keepWindow: 14 * DAY,
      metrics: false,
    };
    io.signal = controller.signal;
    assert.equal(await record(containerd, opts, io), 0);
    assert.equal(await Deno.readTextFile(join(dir, "image_pulls")), `${NOW - 5} k8s.io r/a:1\n`);
    assert.match(await Deno.readTextFile(join(dir, "image_pulls.rejected")), /\nnot a pull\n/);
    assert.equal(await Deno.readTextFile(join(dir, "image_starts")), starts, "untouched");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// doctor

Deno.test("k3sSocketCheck() asks containerd at the k3s/RKE2 socket and names the flag", async () => {
  const answering = new FakeContainerd();
  answering.on.serverVersion = () => Promise.resolve("v1.7.23-k3s2");
  const c = await k3sSocketCheck(answering);
  assert.deepEqual(answering.calls, [[
    "serverVersion",
    { address: K3S_SOCKET, connectTimeout: "2s" },
  ]]);
  assert.equal(c.status, "warn");
  assert.match(
    c.detail,
    new RegExp(`v1\\.7\\.23-k3s2 answers at ${K3S_SOCKET}.*--address ${K3S_SOCKET}`),
  );
  const silent = new FakeContainerd();
  silent.fault = () => {
    throw exitError("version", "ctr: dial timeout");
  };
  const s = await k3sSocketCheck(silent);
  assert.equal(s.status, "info");
  assert.match(s.detail, /no containerd answers/);
});

/** A containerd whose ctr runs but that does not answer. */
function unreachable(): FakeContainerd {
  const c = new FakeContainerd();
  c.fault = (method) => {
    if (method === "serverVersion") throw exitError("version", "ctr: dial");
  };
  return c;
}

Deno.test("diagnose() probes the k3s socket only without --address and when containerd is unreachable", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctre-doctor-" });
  try {
    const down = unreachable();
    const checks = await diagnose(down, dir, undefined, NOW);
    assert.ok(checks.some((c) => c.name === "k3s/RKE2 socket"));
    assert.equal(down.callsOf("serverVersion").length, 2);
    const withAddress = unreachable();
    const checks2 = await diagnose(withAddress, dir, "/x.sock", NOW);
    assert.ok(!checks2.some((c) => c.name === "k3s/RKE2 socket"));
    assert.deepEqual(withAddress.callsOf("serverVersion"), [[]], "not the k3s socket");
    const up = new FakeContainerd();
    assert.ok(!(await diagnose(up, dir, undefined, NOW)).some((c) => c.name === "k3s/RKE2 socket"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ctre status shows last pulls beside starts and stops, and the remembered pins", async () => {
  const stateDir = await tempStateDir();
  try {
    const now = Math.floor(Date.now() / 1000);
    await Deno.writeTextFile(
      join(stateDir, "image_starts"),
      `${now - 7200} ---------- k8s.io r/a:1\n`,
    );
    await Deno.writeTextFile(
      join(stateDir, "image_pulls"),
      `${now - 60} k8s.io r/a:1\n${now - 120} k8s.io r/pulled-only:1\nbad\n`,
    );
    await Deno.writeTextFile(
      join(stateDir, "pinned"),
      `${now - 3 * DAY} ${now - DAY} k8s.io ${digest("p")} ${PAUSE}\n`,
    );
    const json = await runCtre(["status", "--json"], { stateDir });
    assert.equal(json.code, 0, json.stderr);
    const doc = JSON.parse(json.stdout);
    assert.deepEqual(
      doc.entries.map((e: Record<string, unknown>) => [e.ref, e.lastStart, e.lastPull]),
      [["r/a:1", now - 7200, now - 60], ["r/pulled-only:1", null, now - 120]],
    );
    assert.ok(doc.entries[0].ageSeconds < 100, "age counts the pull");
    assert.deepEqual(doc.pinned, [{
      namespace: NS,
      ref: PAUSE,
      digest: digest("p"),
      firstSeen: now - 3 * DAY,
      lastSeen: now - DAY,
    }]);
    assert.equal(doc.pullsRejected.length, 1);
    const table = await runCtre(["status"], { stateDir });
    const lines = table.stdout.split("\n");
    assert.match(lines[0]!, /^NAMESPACE\s+REF\s+LAST START\s+LAST STOP\s+LAST PULL\s+AGE$/);
    assert.match(lines[1]!, /^k8s\.io\s+r\/a:1\s+\S+Z\s+-\s+\S+Z\s+1m$/);
    assert.match(lines[2]!, /^k8s\.io\s+r\/pulled-only:1\s+-\s+-\s+\S+Z\s+2m$/);
    assert.match(table.stdout, /image_pulls: 2 pulls/);
    assert.match(
      table.stdout,
      /Remembered as pinned .*\n.*FIRST SEEN PINNED.*\nk8s\.io\s+registry\.k8s\.io\/pause:3\.9/,
    );
    assert.match(table.stderr, /line 3 of .*image_pulls is corrupt/);
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});
