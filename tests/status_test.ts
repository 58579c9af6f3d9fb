/** lib/ops/status.ts in its steps: load a state dir, compute the rows, render text and JSON. */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  computeStatus,
  loadStatus,
  rejectedWarnings,
  type StatusInputs,
  statusJson,
  statusText,
} from "../lib/ops/status.ts";
import { tempStateDir } from "./support/cli.ts";

const NOW = 1_800_000_000;
const PIN = `sha256:${"a".repeat(64)}`;

function inputs(): StatusInputs {
  return {
    paths: { db: "/s/image_starts", pulls: "/s/image_pulls", pins: "/s/pinned" },
    db: {
      entries: new Map([
        ["k8s.io a:1", { start: NOW - 7200, stop: NOW - 3600 }],
        ["default b:2", { start: NOW - 60, stop: null }],
      ]),
      rejected: [{ lineNo: 3, line: "not a line", reason: "expected 4 fields" }],
    },
    pulls: {
      entries: new Map([["default c:1", NOW - 86400 * 3], ["k8s.io a:1", NOW - 10]]),
      rejected: [],
    },
    pins: {
      entries: new Map([["k8s.io p:1", {
        ns: "k8s.io",
        ref: "p:1",
        digest: PIN,
        firstSeen: NOW - 86400,
        lastSeen: NOW - 600,
      }]]),
      rejected: [{ lineNo: 1, line: "junk", reason: "expected 5 fields" }],
    },
    written: NOW - 120,
    recorder: { name: "recorder", status: "ok", detail: "running (pid 1)" },
  };
}

Deno.test("computeStatus: one row per namespace and ref of starts or pulls, aged from the latest", () => {
  const r = computeStatus(inputs(), NOW);
  assert.deepEqual(r.rows, [
    {
      namespace: "default",
      ref: "b:2",
      lastStart: NOW - 60,
      lastStop: null,
      lastPull: null,
      ageSeconds: 60,
    },
    {
      namespace: "default",
      ref: "c:1",
      lastStart: null,
      lastStop: null,
      lastPull: NOW - 86400 * 3,
      ageSeconds: 86400 * 3,
    },
    {
      namespace: "k8s.io",
      ref: "a:1",
      lastStart: NOW - 7200,
      lastStop: NOW - 3600,
      lastPull: NOW - 10,
      ageSeconds: 10,
    },
  ]);
  assert.deepEqual(r.pinned, [{
    namespace: "k8s.io",
    ref: "p:1",
    digest: PIN,
    firstSeen: NOW - 86400,
    lastSeen: NOW - 600,
  }]);
});

Deno.test("statusText: the table, the files' summary, the pinned images", () => {
  const lines = statusText(computeStatus(inputs(), NOW));
  assert.match(lines[0]!, /^NAMESPACE +REF +LAST START +LAST STOP +LAST PULL +AGE$/);
  assert.match(lines[1]!, /^default +b:2 +\S+Z +- +- +1m$/);
  assert.match(lines[2]!, /^default +c:1 +- +- +\S+Z +3d$/);
  assert.match(lines[3]!, /^k8s\.io +a:1 +\S+Z +\S+Z +\S+Z +10s$/);
  assert.equal(lines[4], "");
  assert.match(lines[5]!, /^\/s\/image_starts: 2 entries, last written \S+Z \(2m ago\)$/);
  assert.equal(lines[6], "/s/image_pulls: 2 pulls");
  assert.equal(lines[7], "Recorder: running (pid 1)");
  assert.equal(lines[9], "Remembered as pinned (/s/pinned; prune keeps them for --pin-memory):");
  assert.match(lines[11]!, new RegExp(`^k8s\\.io +p:1 +${PIN.slice(0, 19)} +\\S+Z +\\S+Z$`));
  assert.equal(lines.length, 12);
  const bare = statusText(
    computeStatus({ ...inputs(), written: null, pins: { entries: new Map(), rejected: [] } }, NOW),
  );
  assert.match(bare.at(-3)!, /2 entries, never written$/);
  assert.equal(bare.at(-1), "Recorder: running (pid 1)", "no pinned section");
});

Deno.test("statusJson and rejectedWarnings", () => {
  const r = computeStatus(inputs(), NOW);
  const doc = statusJson(r);
  assert.deepEqual(Object.keys(doc), [
    "schemaVersion",
    "db",
    "lastWritten",
    "recorderRunning",
    "recorder",
    "entries",
    "rejected",
    "pulls",
    "pullsRejected",
    "pinnedFile",
    "pinned",
    "pinnedRejected",
  ]);
  assert.equal(doc.lastWritten, new Date((NOW - 120) * 1000).toISOString());
  assert.equal(doc.recorderRunning, true);
  assert.equal(
    statusJson({ ...r, recorder: { ...r.recorder, status: "warn" } }).recorderRunning,
    false,
  );
  assert.deepEqual(rejectedWarnings(r), [
    'Warning: line 3 of /s/image_starts is corrupt (expected 4 fields): "not a line"',
    'Warning: line 1 of /s/pinned is corrupt (expected 5 fields): "junk"',
  ]);
});

Deno.test("loadStatus reads an empty state dir and one with a usage DB", async () => {
  const dir = await tempStateDir();
  try {
    const empty = await loadStatus(dir);
    assert.deepEqual([empty.db.entries.size, empty.written, empty.recorder.status], [
      0,
      null,
      "warn",
    ]);
    assert.equal(empty.paths.db, join(dir, "image_starts"));
    await Deno.writeTextFile(join(dir, "image_starts"), `${NOW} ---------- default b:2\n`);
    const one = await loadStatus(dir);
    const mtime = (await Deno.stat(join(dir, "image_starts"))).mtime!.getTime() / 1000;
    assert.deepEqual([one.db.entries.size, one.written], [1, mtime]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
