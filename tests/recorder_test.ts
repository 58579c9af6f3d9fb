import assert from "node:assert/strict";
import { join } from "node:path";
import { CtrError } from "../lib/core/errors.ts";
import { record, Recorder, type RecordOptions } from "../lib/recorder/recorder.ts";
import { usageKey } from "../lib/state/line_file.ts";
import { NULL_TIME, parseUsageDb, type Usage } from "../lib/state/usage_db.ts";
import { fail, FakeCtr, ok, type RunScript } from "./support/fake_ctr.ts";
import { ctrGateway } from "../lib/ctr/ctr_gateway.ts";
import { readEventLine } from "../lib/ctr/events.ts";
import { containerInfo, eventStream, FakeContainerd } from "./support/fake_containerd.ts";
import { FakeIo } from "./support/fake_io.ts";

const DAY = 86400;

/** Gives the recorder one `ctr event` line, as the gateway's event stream reads it. */
function feed(rec: Recorder, line: string): Promise<void> {
  return rec.receive(readEventLine(line));
}
/** 2026-11-27 17:12:41 UTC in unix seconds. */
const T0 = Date.UTC(2026, 10, 27, 17, 12, 41) / 1000;
const NS = "k8s.io";
const REF = "docker.io/library/nginx:1.25";

/** A `ctr event` line at T0 + `offset` seconds (fraction dropped when whole, as Go does). */
function line(topic: string, payload: unknown, ns = NS, offset = 0.976313083): string {
  const d = new Date((T0 + Math.floor(offset)) * 1000).toISOString();
  const frac = String(offset - Math.floor(offset)).replace(/^0/, "").slice(0, 10);
  const when = `${d.slice(0, 10)} ${d.slice(11, 19)}${frac} +0000 UTC`;
  return `${when} ${ns} ${topic} ${payload === undefined ? "" : JSON.stringify(payload)}`;
}

/** `ctr containers info` JSON as 1.6 prints it. */
function info(id: string, image: string): string {
  return JSON.stringify(
    {
      ID: id,
      Labels: { "io.cri-containerd.kind": "container" },
      Image: image,
      Runtime: { Name: "io.containerd.runc.v2", Options: null },
      SnapshotKey: id,
      Snapshotter: "overlayfs",
      CreatedAt: "2026-11-27T17:12:40.123456789Z",
      UpdatedAt: "2026-11-27T17:12:40.123456789Z",
      Extensions: null,
    },
    null,
    4,
  );
}

interface Setup {
  rec: Recorder;
  ctr: FakeCtr;
  io: FakeIo;
}

function setup(
  opts: { script?: RunScript; quiet?: boolean; entries?: Map<string, Usage>; stateDir?: string } =
    {},
): Setup {
  const ctr = new FakeCtr(opts.script ?? (() => fail("ctr: not scripted\n")));
  const io = new FakeIo({ now: T0 + 60 });
  const record: RecordOptions = {
    stateDir: opts.stateDir ?? "/nonexistent/ctre-test",
    quiet: opts.quiet ?? false,
    flushInterval: 1,
    keepWindow: 14 * DAY,
    metrics: false,
  };
  const rec = new Recorder(ctrGateway(ctr), record, io, opts.entries ?? new Map());
  return { rec, ctr, io };
}

/** stdout lines other than the `D (first visual …)` ones. */
function said(io: FakeIo): string[] {
  return io.stdout.lines.filter((l) => !l.startsWith("D "));
}

const CREATE = { id: "c1", image: REF, runtime: { name: "io.containerd.runc.v2" } };

Deno.test("Recorder /containers/create records a start and prints C", async () => {
  const { rec, ctr, io } = setup();
  await feed(rec, line("/containers/create", CREATE));
  assert.deepEqual([...rec.entries], [[usageKey(NS, REF), { start: T0, stop: null }]]);
  assert.deepEqual(io.stdout.lines, [
    `D (first visual of event action '/containers/create') data: ${JSON.stringify(CREATE)}`,
    `C ${T0} ${NS} ${REF}`,
  ]);
  assert.equal(io.stderr.text, "");
  assert.equal(ctr.spawned, 0);
  assert.equal(rec.dirty, true);
  assert.equal(rec.stats.events, 1);
  assert.equal(rec.stats.recorded, 1);
  assert.ok(Math.abs(rec.stats.lastEventTime! - (T0 + 0.976313083)) < 1e-6);
});

Deno.test("Recorder /containers/create without image records nothing", async (t) => {
  await t.step("prints NO_IMAGE_REF outside moby", async () => {
    const { rec, io } = setup();
    await feed(rec, line("/containers/create", { id: "c1", runtime: {} }, "default", 0));
    assert.equal(rec.entries.size, 0);
    assert.equal(rec.dirty, false);
    assert.deepEqual(said(io), [`C ${T0} default NO_IMAGE_REF`]);
  });
  await t.step("silent in moby", async () => {
    const { rec, io } = setup();
    await feed(rec, line("/containers/create", { id: "c1", image: "" }, "moby", 0));
    assert.equal(rec.entries.size, 0);
    assert.deepEqual(said(io), []);
  });
});

Deno.test("Recorder /tasks/create of a container it saw created spawns no ctr", async () => {
  const { rec, ctr, io } = setup();
  await feed(rec, line("/containers/create", CREATE, NS, 0));
  await feed(rec, line("/tasks/create", { container_id: "c1", pid: 42 }, NS, 3.5));
  assert.equal(ctr.spawned, 0);
  assert.deepEqual(ctr.calls, []);
  assert.deepEqual(said(io), [`C ${T0} ${NS} ${REF}`, `T ${T0 + 3} ${NS} ${REF}`]);
  assert.deepEqual(rec.entries.get(usageKey(NS, REF)), { start: T0 + 3, stop: null });
});

Deno.test("Recorder /tasks/create of an unknown container asks ctr once", async () => {
  const { rec, ctr, io } = setup({
    script: (args) =>
      args.join(" ") === `-n ${NS} containers info c9` ? ok(info("c9", REF)) : fail("no\n"),
  });
  await feed(rec, line("/tasks/create", { container_id: "c9", pid: 42 }, NS, 0));
  assert.deepEqual(ctr.calls, [["-n", NS, "containers", "info", "c9"]]);
  assert.deepEqual(said(io), [`T ${T0} ${NS} ${REF}`]);
  assert.deepEqual(rec.entries.get(usageKey(NS, REF)), { start: T0, stop: null });
  // What it learned is kept: the exit needs no second lookup.
  await feed(
    rec,
    line("/tasks/exit", {
      container_id: "c9",
      id: "c9",
      pid: 42,
      exited_at: "2026-11-27T17:12:50.5Z",
    }),
  );
  assert.equal(ctr.spawned, 1);
  assert.deepEqual(rec.entries.get(usageKey(NS, REF)), { start: T0, stop: T0 + 9 });
});

Deno.test("Recorder skips a container that is gone by the time it asks, without throwing", async () => {
  const gone = 'ctr: container "c9" in namespace "k8s.io": not found\n';
  const { rec, ctr, io } = setup({ script: () => fail(gone) });
  await feed(rec, line("/tasks/create", { container_id: "c9", pid: 42 }));
  await feed(
    rec,
    line("/tasks/exit", {
      container_id: "c9",
      id: "c9",
      pid: 42,
      exited_at: "2026-11-27T17:12:50Z",
    }),
  );
  assert.equal(ctr.spawned, 2);
  assert.equal(rec.entries.size, 0);
  assert.equal(rec.dirty, false);
  assert.deepEqual(said(io), []);
  assert.deepEqual(io.stderr.lines, [
    `ERROR container ${NS} c9 is already gone, skipping (${gone.trim()})`,
    `ERROR container ${NS} c9 is already gone, skipping (${gone.trim()})`,
  ]);
});

Deno.test("Recorder logs a ctr that cannot run, without throwing", async () => {
  const { rec, io } = setup({
    script: () => {
      throw new CtrError("Cannot run ctr -n k8s.io containers info c9: not on PATH", 127, "");
    },
  });
  await feed(rec, line("/tasks/create", { container_id: "c9", pid: 42 }));
  assert.equal(rec.entries.size, 0);
  assert.deepEqual(io.stderr.lines, [
    "ERROR event /tasks/create in k8s.io: Cannot run ctr -n k8s.io containers info c9: " +
    "not on PATH, skipping",
  ]);
});

Deno.test("Recorder logs unreadable containers info output, without throwing", async () => {
  const { rec, io } = setup({ script: () => ok("not json") });
  await feed(rec, line("/tasks/create", { container_id: "c9", pid: 42 }));
  assert.equal(rec.entries.size, 0);
  assert.equal(io.stderr.lines.length, 1);
  assert.match(
    io.stderr.lines[0]!,
    /^ERROR container k8s\.io c9: Cannot parse ctr containers info/,
  );
});

Deno.test("Recorder /tasks/exit of the main process records the stop", async (t) => {
  const forms: [string, unknown, number][] = [
    ["1.6 RFC 3339 exited_at", "2026-11-27T17:12:50.118099013Z", T0 + 9],
    ["1.7+ seconds and nanos exited_at", { seconds: T0 + 20, nanos: 118099013 }, T0 + 20],
    ["no exited_at: the event time", undefined, T0],
  ];
  for (const [name, exitedAt, stop] of forms) {
    await t.step(name, async () => {
      const { rec, ctr, io } = setup();
      await feed(rec, line("/containers/create", CREATE, NS, 0));
      const payload: Record<string, unknown> = { container_id: "c1", id: "c1", pid: 42 };
      if (exitedAt !== undefined) payload.exited_at = exitedAt;
      await feed(rec, line("/tasks/exit", payload, NS, 0.5));
      assert.equal(ctr.spawned, 0);
      assert.deepEqual(rec.entries.get(usageKey(NS, REF)), { start: T0, stop });
      assert.deepEqual(said(io), [`C ${T0} ${NS} ${REF}`, `t ${stop} ${NS} ${REF}`]);
    });
  }
});

Deno.test("Recorder /tasks/exit of an exec records nothing", async () => {
  const { rec, ctr, io } = setup();
  await feed(rec, line("/containers/create", CREATE, NS, 0));
  const before = structuredClone([...rec.entries]);
  await feed(
    rec,
    line("/tasks/exit", {
      container_id: "c1",
      id: "exec-1",
      pid: 43,
      exited_at: "2026-11-27T17:13:50Z",
    }),
  );
  assert.deepEqual([...rec.entries], before);
  assert.equal(ctr.spawned, 0);
  assert.deepEqual(said(io), [`C ${T0} ${NS} ${REF}`]);
});

Deno.test("Recorder merges starts and stops with the original's rule", async () => {
  const { rec } = setup();
  const key = usageKey(NS, REF);
  await feed(rec, line("/containers/create", CREATE, NS, 0));
  assert.deepEqual(rec.entries.get(key), { start: T0, stop: null });
  await feed(
    rec,
    line("/tasks/exit", { container_id: "c1", id: "c1", exited_at: "2026-11-27T17:12:46Z" }),
  );
  assert.deepEqual(rec.entries.get(key), { start: T0, stop: T0 + 5 });
  await feed(rec, line("/tasks/create", { container_id: "c1", pid: 9 }, NS, 10));
  assert.deepEqual(rec.entries.get(key), { start: T0 + 10, stop: T0 + 5 });
  // A stop for a ref never seen started uses the stop as start.
  await feed(rec, line("/containers/create", { id: "c2", image: "x:1" }, NS, 20));
  const other = usageKey(NS, "x:1");
  rec.entries.delete(other);
  await feed(
    rec,
    line("/tasks/exit", { container_id: "c2", id: "c2", exited_at: "2026-11-27T17:13:11Z" }),
  );
  assert.deepEqual(rec.entries.get(other), { start: T0 + 30, stop: T0 + 30 });
});

Deno.test("Recorder logs malformed lines and payloads, without throwing", async () => {
  const { rec, io } = setup();
  await feed(rec, "garbage");
  await feed(rec, "2026-11-27 17:12:41 +0000 UTC k8s.io /tasks/exit {broken");
  await feed(rec, line("/containers/create", { image: REF }));
  await feed(rec, line("/tasks/create", { pid: 1 }));
  await feed(rec, line("/tasks/exit", { id: "c1" }));
  assert.equal(rec.entries.size, 0);
  assert.equal(rec.dirty, false);
  assert.equal(rec.stats.events, 3, "only the parsed lines count as events");
  assert.deepEqual(io.stderr.lines, [
    'ERROR Cannot parse event line "garbage", skipping',
    "ERROR Cannot parse event payload of /tasks/exit in " +
    '"2026-11-27 17:12:41 +0000 UTC k8s.io /tasks/exit {broken", skipping',
    "ERROR event /containers/create in k8s.io: no container id in payload, skipping",
    "ERROR event /tasks/create in k8s.io: no container_id in payload, skipping",
    "ERROR event /tasks/exit in k8s.io: no container_id in payload, skipping",
  ]);
});

Deno.test("Recorder never records a ref with whitespace or control characters", async (t) => {
  for (const ref of ["bad ref:1", "bad\tref:1", "bad\nref:1", "bad\u0007ref:1", "----------"]) {
    await t.step(JSON.stringify(ref), async () => {
      const { rec, io } = setup();
      await feed(rec, line("/containers/create", { id: "c1", image: ref }));
      assert.equal(rec.entries.size, 0);
      assert.equal(rec.dirty, false);
      assert.deepEqual(said(io), []);
      assert.deepEqual(io.stderr.lines, [
        `ERROR not recording "k8s.io" ${JSON.stringify(ref)}: whitespace or control characters`,
      ]);
    });
  }
  await t.step("a namespace with a control character", async () => {
    const { rec, io } = setup();
    await feed(rec, line("/containers/create", CREATE, "k8s\u0001io"));
    assert.equal(rec.entries.size, 0);
    assert.equal(io.stderr.lines.length, 1);
  });
});

Deno.test("Recorder prints D once per new topic", async () => {
  const { rec, io } = setup();
  await feed(rec, line("/snapshot/prepare", { key: "k1", parent: "sha256:p" }));
  await feed(rec, line("/containers/create", CREATE));
  await feed(rec, line("/containers/create", { ...CREATE, id: "c2" }));
  await feed(rec, line("/snapshot/prepare", { key: "k2", parent: "sha256:p" }));
  await feed(rec, line("/snapshot/remove", undefined));
  await feed(rec, line("/snapshot/remove", undefined));
  const d = io.stdout.lines.filter((l) => l.startsWith("D "));
  assert.deepEqual(d, [
    `D (first visual of event action '/snapshot/prepare') data: {"key":"k1","parent":"sha256:p"}`,
    `D (first visual of event action '/containers/create') data: ${JSON.stringify(CREATE)}`,
    "D (first visual of event action '/snapshot/remove') data: {}",
  ]);
  assert.equal(rec.stats.events, 6);
});

Deno.test("Recorder --quiet prints nothing on stdout, errors still on stderr", async () => {
  const { rec, io } = setup({ quiet: true });
  await feed(rec, line("/containers/create", CREATE));
  await feed(rec, line("/containers/create", { id: "c2" }, "default"));
  await feed(rec, line("/tasks/create", { container_id: "c1" }));
  await feed(rec, line("/tasks/exit", { container_id: "c1", id: "c1" }));
  await feed(rec, "garbage");
  assert.equal(io.stdout.text, "");
  assert.equal(rec.stats.recorded, 3);
  assert.deepEqual(io.stderr.lines, ['ERROR Cannot parse event line "garbage", skipping']);
});

Deno.test("Recorder resync() learns containers so task events need no lookup", async () => {
  const { rec, ctr, io } = setup({
    script: (args) => {
      switch (args.join(" ")) {
        case "namespace ls -q":
          return ok("default\nk8s.io\n");
        case "-n default container ls":
          return ok(
            "CONTAINER    IMAGE    RUNTIME    \nm1           -        io.containerd.runc.v2    \n",
          );
        case "-n k8s.io container ls":
          return ok(
            "CONTAINER    IMAGE                           RUNTIME                  \n" +
              `c1           ${REF}    io.containerd.runc.v2    \n`,
          );
      }
      return fail("unexpected\n");
    },
  });
  await rec.resync();
  assert.equal(ctr.spawned, 3);
  assert.deepEqual(
    rec.images,
    new Map<string, string | null>([["default m1", null], [`${NS} c1`, REF]]),
  );
  await feed(rec, line("/tasks/create", { container_id: "c1" }, NS, 0));
  assert.equal(ctr.spawned, 3);
  await feed(rec, line("/tasks/create", { container_id: "m1" }, "default", 0));
  // No image: its snapshot is looked up (content ls fails here, so nothing is found).
  assert.deepEqual(ctr.calls.slice(3), [["-n", "default", "content", "ls"]]);
  assert.deepEqual(said(io), [`T ${T0} ${NS} ${REF}`, `T ${T0} default NO_IMAGE_REF`]);
});

/** A file of the live docker 2.1.9 capture (tests/testdata/lineage/docker-2.1). */
function dockerText(name: string): string {
  return Deno.readTextFileSync(new URL(`./testdata/lineage/docker-2.1/${name}`, import.meta.url));
}

/** ctr answering the moby listings a docker container's snapshot look-up asks for. */
const dockerListings: RunScript = (args) => {
  switch (args.join(" ")) {
    case "-n moby content ls":
      return ok(dockerText("content_ls.txt"));
    case "-n moby image ls":
      return ok(dockerText("image_ls.txt"));
    case "-n moby snapshot --snapshotter overlayfs ls":
      return ok(dockerText("snapshot_ls.txt"));
  }
  return fail("unexpected\n");
};

Deno.test("Recorder maps a docker container (no image) through its snapshot to its refs", async () => {
  const ps = dockerText("docker_ps.txt").split("\n").slice(1).map((l) => l.split(/\s+/));
  const stopped = ps.find((p) => p[1] === "docker.io/library/stop:1")![0]!;
  const { rec, io, ctr } = setup({ script: dockerListings });
  await feed(rec, line("/containers/create", { id: stopped, runtime: {} }, "moby", 0));
  await feed(rec, line("/tasks/create", { container_id: stopped }, "moby", 0));
  await feed(
    rec,
    line(
      "/tasks/exit",
      { container_id: stopped, id: stopped, exited_at: { seconds: T0 + 5 } },
      "moby",
      5,
    ),
  );
  assert.deepEqual(said(io), [
    `T ${T0} moby docker.io/library/stop:1`,
    `t ${T0 + 5} moby docker.io/library/stop:1`,
  ]);
  assert.equal(ctr.spawned, 3, "looked up once, at start");
  assert.deepEqual(rec.entries.get(usageKey("moby", "docker.io/library/stop:1")), {
    start: T0,
    stop: T0 + 5,
  });
});

Deno.test("Recorder looks up a docker container whose snapshot leads to no image once, at start", async () => {
  const { rec, io, ctr } = setup({ script: dockerListings });
  const id = "f".repeat(64); // no snapshot of that key: no image to name
  await feed(rec, line("/containers/create", { id, runtime: {} }, "moby", 0));
  await feed(rec, line("/tasks/create", { container_id: id }, "moby", 0));
  assert.equal(ctr.spawned, 3);
  const exit = { container_id: id, id, exited_at: { seconds: T0 + 5 } };
  await feed(rec, line("/tasks/exit", exit, "moby", 5));
  assert.equal(ctr.spawned, 3, "its exit finds the same nothing without asking again");
  assert.deepEqual(said(io), []);
  assert.equal(rec.entries.size, 0);
  // A new start finds the same nothing in the listing it has: nothing changed since.
  await feed(rec, line("/tasks/create", { container_id: id }, "moby", 10));
  assert.equal(ctr.spawned, 3);
  // After an image event in that namespace, it lists again.
  await feed(rec, line("/images/delete", { name: "docker.io/library/x:1" }, "moby", 11));
  await feed(rec, line("/tasks/create", { container_id: id }, "moby", 12));
  assert.equal(ctr.spawned, 6);
});

Deno.test("Recorder maps many docker containers of one image with one listing", async () => {
  const ps = dockerText("docker_ps.txt").split("\n").slice(1).map((l) => l.split(/\s+/));
  const stopped = ps.find((p) => p[1] === "docker.io/library/stop:1")![0]!;
  const { rec, io, ctr } = setup({ script: dockerListings });
  await feed(rec, line("/containers/create", { id: stopped, runtime: {} }, "moby", 0));
  await feed(rec, line("/tasks/create", { container_id: stopped }, "moby", 0));
  // The snapshot ls of the capture: the image's chain, under that container's init layer.
  const rows = dockerText("snapshot_ls.txt").split("\n").map((l) => l.trim().split(/\s+/));
  const chain = rows.find((f) => f[0] === `${stopped}-init`)![1]!;
  for (let i = 0; i < 20; i++) {
    // What dockerd does (real 2.1.9 events, events_run_rm.txt): an init layer, then the top.
    const id = `${i}`.repeat(64).slice(0, 64);
    const init = { key: `${id}-init-key`, parent: chain };
    await feed(rec, line("/snapshot/prepare", init, "moby", 1));
    const commit = { key: `${id}-init-key`, name: `${id}-init` };
    await feed(rec, line("/snapshot/commit", commit, "moby", 1));
    await feed(rec, line("/snapshot/prepare", { key: id, parent: `${id}-init` }, "moby", 1));
    await feed(rec, line("/containers/create", { id, runtime: {} }, "moby", 1));
    await feed(rec, line("/tasks/create", { container_id: id }, "moby", 1));
  }
  assert.equal(ctr.spawned, 3, `one listing for all: ${ctr.calls.join(" | ")}`);
  const starts = said(io).filter((l) => l.startsWith("T "));
  assert.equal(starts.length, 21);
  assert.ok(starts.every((l) => l.endsWith(" moby docker.io/library/stop:1")), starts.join("\n"));
});

Deno.test("Recorder maps a docker run --rm already gone from snapshot ls (real 2.1.9 events)", async () => {
  // Its snapshot ls was captured before the run: no such container.
  const { rec, io } = setup({ quiet: false, script: dockerListings });
  for (const l of dockerText("events_run_rm.txt").split("\n").filter((l) => l !== "")) {
    await feed(rec, l);
  }
  const lines = said(io).filter((l) => !l.startsWith("D "));
  assert.equal(lines.length, 2, lines.join("\n"));
  assert.match(lines[0]!, /^T \d+ moby docker\.io\/library\/unused:1$/);
  assert.match(lines[1]!, /^t \d+ moby docker\.io\/library\/unused:1$/);
});

Deno.test("Recorder records an image volume's mount and unmount (containerd 2.1 CRI)", async () => {
  const dir = new URL("./testdata/lineage/cri-2.1-image-volume/", import.meta.url);
  const imageLs = Deno.readTextFileSync(new URL("image_ls.txt", dir));
  const snapshots = Deno.readTextFileSync(new URL("snapshot_ls.txt", dir));
  const key = snapshots.split("\n").map((l) => l.split(/\s+/)).find((c) =>
    c[0]!.includes("/image-volumes/")
  )!;
  const { rec, io } = setup({
    script: (args) => args.join(" ") === `-n ${NS} image ls` ? ok(imageLs) : fail("unexpected\n"),
  });
  await feed(rec, line("/snapshot/prepare", { key: key[0], parent: key[1] }, NS, 0));
  await feed(rec, line("/snapshot/remove", { key: key[0], snapshotter: "overlayfs" }, NS, 9));
  const refs = said(io).filter((l) => !l.startsWith("D "));
  assert.equal(refs.length, 6, refs.join("\n")); // tag, repo@digest, sha256:<config>; twice
  assert.ok(refs.slice(0, 3).every((l) => l.startsWith(`V ${T0} ${NS} `)));
  assert.ok(refs.slice(3).every((l) => l.startsWith(`v ${T0 + 9} ${NS} `)));
  assert.ok(refs.some((l) => /\/library\/vol:1$/.test(l)));
});

Deno.test("Recorder forgets deleted containers", async () => {
  const { rec, ctr } = setup({ script: () => fail("ctr: not found\n") });
  await feed(rec, line("/containers/create", CREATE));
  await feed(rec, line("/containers/delete", { id: "c1" }));
  assert.equal(rec.images.size, 0);
  await feed(rec, line("/tasks/create", { container_id: "c1" }));
  assert.deepEqual(ctr.calls, [["-n", NS, "containers", "info", "c1"]]);
});

Deno.test("Recorder flush() writes the DB only when something changed", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "ctre-recorder-" });
  const path = join(dir, "image_starts");
  try {
    const entries = parseUsageDb(
      [
        `${T0 - DAY} docker.io/library/old-format:1`,
        `${T0 - 2 * DAY} ${NS} docker.io/library/older-format:1`,
        `${T0 - 30 * DAY} ${T0 - 20 * DAY} ${NS} docker.io/library/expired:1`,
        `${T0 - 30 * DAY} ${T0 - DAY} ${NS} docker.io/library/stopped-recently:1`,
      ].join("\n"),
    ).entries;
    const { rec, io } = setup({ stateDir: dir, entries });
    await t.step("nothing recorded: no write", async () => {
      await rec.flush();
      assert.equal(rec.stats.writes, 0);
      await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
    });
    await t.step(
      "after a record: the whole DB in the current format, expired dropped",
      async () => {
        await feed(rec, line("/containers/create", CREATE, NS, 0));
        assert.equal(rec.dirty, true);
        await rec.flush();
        assert.equal(rec.dirty, false);
        assert.equal(rec.stats.writes, 1);
        assert.equal(
          await Deno.readTextFile(path),
          `${T0 - DAY} ${NULL_TIME} * docker.io/library/old-format:1\n` +
            `${T0} ${NULL_TIME} ${NS} ${REF}\n` +
            `${T0 - 2 * DAY} ${NULL_TIME} ${NS} docker.io/library/older-format:1\n` +
            `${T0 - 30 * DAY} ${T0 - DAY} ${NS} docker.io/library/stopped-recently:1\n`,
        );
        assert.equal(rec.entries.has(usageKey(NS, "docker.io/library/expired:1")), false);
      },
    );
    await t.step("a second flush without changes does not write", async () => {
      await Deno.remove(path);
      await rec.flush();
      assert.equal(rec.stats.writes, 1);
      await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
    });
    await t.step("flush(true) writes even when nothing changed", async () => {
      await rec.flush(true);
      assert.equal(rec.stats.writes, 2);
      assert.equal((await Deno.readTextFile(path)).split("\n").length, 5);
    });
    await t.step("entries age out by the clock of the Io", async () => {
      io.time = T0 + 14 * DAY + 1;
      await feed(rec, line("/containers/create", { id: "c3", image: "x:3" }, NS, 14 * DAY));
      await rec.flush();
      assert.equal(
        await Deno.readTextFile(path),
        `${T0 + 14 * DAY} ${NULL_TIME} ${NS} x:3\n`,
      );
    });
    assert.equal(io.stderr.text, "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Recorder flush() that fails logs, stays dirty and retries", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctre-recorder-" });
  try {
    const notADir = join(dir, "file");
    await Deno.writeTextFile(notADir, "");
    const { rec, io } = setup({ stateDir: notADir });
    await feed(rec, line("/containers/create", CREATE));
    await rec.flush();
    assert.equal(rec.dirty, true);
    assert.equal(rec.stats.writes, 0);
    assert.equal(io.stderr.lines.length, 1);
    assert.match(io.stderr.lines[0]!, /^ERROR Cannot write ".*image_starts"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function fixtureLines(path: string): string[] {
  return Deno.readTextFileSync(new URL(`./testdata/${path}`, import.meta.url)).split("\n")
    .filter((l) => l !== "");
}

Deno.test("Recorder follows a real ctr 1.6 container life without spawning ctr", async () => {
  const { rec, ctr, io } = setup();
  for (const l of fixtureLines("ctr-1.6/events.txt")) await feed(rec, l);
  const t = Date.UTC(2026, 10, 27, 21, 52, 32) / 1000;
  const ref = "docker.io/library/ctre-events:1";
  assert.equal(ctr.spawned, 0);
  assert.equal(io.stderr.text, "");
  assert.deepEqual(said(io), [
    `P ${t} default ${ref}`,
    `P ${t} default ${ref}-alias`,
    `P ${t} default ${ref}`,
    `C ${t} default ${ref}`,
    `T ${t} default ${ref}`,
    `t ${t} default ${ref}`,
  ]);
  assert.deepEqual([...rec.entries], [[`default ${ref}`, { start: t, stop: t }]]);
  // /images/create and /images/update are pulls (uses of the ref); /images/delete is not.
  assert.deepEqual([...rec.pulls].sort(), [[`default ${ref}`, t], [`default ${ref}-alias`, t]]);
  const topics = io.stdout.lines.filter((l) => l.startsWith("D "))
    .map((l) => /'(.*)'/.exec(l)?.[1]);
  assert.deepEqual(topics, [
    "/images/create",
    "/snapshot/prepare",
    "/snapshot/commit",
    "/images/update",
    "/containers/create",
    "/tasks/create",
    "/tasks/start",
    "/tasks/exec-added",
    "/tasks/exec-started",
    "/tasks/exit",
    "/tasks/delete",
    "/snapshot/remove",
    "/containers/delete",
    "/images/delete",
  ]);
  assert.equal(rec.stats.events, 17);
  assert.equal(rec.images.size, 0, "the deleted container is forgotten");
});

for (
  const [minor, start, exit] of [
    // The second of /tasks/start, and of the main process's exited_at, in each capture.
    ["1.7", "2026-12-02T06:49:14Z", "2026-12-02T06:49:15Z"],
    ["2.1", "2026-12-02T06:49:59Z", "2026-12-02T06:50:00Z"],
  ]
) {
  Deno.test(`Recorder follows a real ctr ${minor} container life without spawning ctr`, async () => {
    const { rec, ctr, io } = setup();
    for (const l of fixtureLines(`ctr-${minor}/events.txt`)) await feed(rec, l);
    const ref = "docker.io/library/ctre-events:1";
    const [t0, t1] = [Date.parse(start!) / 1000, Date.parse(exit!) / 1000];
    assert.equal(ctr.spawned, 0);
    assert.equal(io.stderr.text, "");
    assert.deepEqual(said(io).map((l) => l.replace(/^(\S) (\d+) /, "$1 ")), [
      // image create, tag (create), label (update): pulls, i.e. uses of the ref
      `P default ${ref}`,
      `P default ${ref}-alias`,
      `P default ${ref}`,
      `C default ${ref}`,
      `T default ${ref}`,
      `t default ${ref}`,
    ]);
    assert.deepEqual([...rec.entries], [[`default ${ref}`, { start: t0, stop: t1 }]]);
    assert.deepEqual([...rec.pulls.keys()].sort(), [`default ${ref}`, `default ${ref}-alias`]);
    assert.equal(rec.images.size, 0, "the deleted container is forgotten");
  });
}

Deno.test("Recorder follows a hand-made 2.x CRI container life (ctr-2.x)", async () => {
  const { rec, ctr, io } = setup();
  for (const l of fixtureLines("ctr-2.x/events.txt")) await feed(rec, l);
  const ref = "docker.io/library/nginx:1.27";
  assert.equal(ctr.spawned, 0);
  assert.equal(io.stderr.text, "");
  assert.deepEqual(said(io), [
    `C ${T0} ${NS} ${ref}`,
    `T ${T0} ${NS} ${ref}`,
    `t ${T0 + 21} ${NS} ${ref}`,
  ]);
  assert.deepEqual([...rec.entries], [[`${NS} ${ref}`, { start: T0, stop: T0 + 21 }]]);
  assert.ok(
    io.stdout.lines.includes("D (first visual of event action '/example/no-payload') data: {}"),
  );
});

Deno.test("record() survives ctr event ending, reconnects, and writes the DB on stop", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctre-record-" });
  try {
    const controller = new AbortController();
    const events = fixtureLines("ctr-1.6/events.txt");
    let streams = 0;
    const ctr = new FakeCtr(
      (args) => {
        switch (args.join(" ")) {
          case "namespace ls -q":
            return ok("default\n");
          case "-n default container ls":
            return ok("CONTAINER    IMAGE    RUNTIME    \n");
        }
        return fail("ctr: unexpected\n");
      },
      () => ({
        lines: ++streams === 1 ? events : [],
        code: 1,
        stderr: "ctr: rpc error: code = Unavailable desc = transport is closing\n",
      }),
    );
    const io = new FakeIo({ now: T0 });
    const realSleep = io.sleep.bind(io);
    io.sleep = (ms: number) => {
      // Stop during the second backoff.
      if (io.sleeps.length === 1) controller.abort();
      return realSleep(ms);
    };
    const opts: RecordOptions = {
      stateDir: dir,
      quiet: true,
      flushInterval: 3600,
      keepWindow: 14 * DAY,
      metrics: false,
    };
    io.signal = controller.signal;
    assert.equal(await record(ctrGateway(ctr), opts, io), 0);
    assert.deepEqual(ctr.streams, [["event"], ["event"]]);
    assert.deepEqual(io.sleeps, [1000, 2000], "backoff doubles while no event arrives");
    const why = "ctr event ended with code 1: " +
      "ctr: rpc error: code = Unavailable desc = transport is closing";
    assert.deepEqual(io.stderr.lines, [
      `ERROR ${why}; reconnecting in 1s (attempt 1)`,
      `ERROR ${why}; reconnecting in 2s (attempt 2)`,
    ]);
    assert.equal(io.stdout.text, "");
    const t = Date.UTC(2026, 10, 27, 21, 52, 32) / 1000;
    assert.equal(
      await Deno.readTextFile(join(dir, "image_starts")),
      `${t} ${t} default docker.io/library/ctre-events:1\n`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("record() catches up on a container started while it reconnected, and says when it is connected", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctre-record-" });
  try {
    const controller = new AbortController();
    const row = (id: string, image: string) => ({ id, image, runtime: "io.containerd.runc.v2" });
    let resyncs = 0;
    const metrics = () => Deno.readTextFileSync(join(dir, "metrics", "ctre.prom"));
    const seen: Record<string, string> = {};
    const containerd = new FakeContainerd();
    containerd.ns("default").tasks = [
      { id: "old", pid: 10, status: "RUNNING" },
      { id: "app3", pid: 11, status: "RUNNING" },
    ];
    containerd.ns("default").infos.set(
      "probe",
      containerInfo("probe", {}, undefined, "docker.io/library/probe:1"),
    );
    // The first connect knows "old"; "app3" was created and started in the gap.
    containerd.on.listContainers = () =>
      Promise.resolve(
        ++resyncs === 1
          ? [row("old", "docker.io/library/old:1")]
          : [row("old", "docker.io/library/old:1"), row("app3", REF)],
      );
    containerd.fault = (method) => {
      if (method === "containerInfo") seen.following = metrics();
    };
    containerd.events = () => {
      if (resyncs === 1) seen.reconnecting = metrics();
      const probe = {
        time: T0,
        ns: "default",
        topic: "/tasks/create",
        payload: { container_id: "probe" },
      };
      return eventStream(resyncs === 0 ? [] : [probe], {
        code: 1,
        stderr: "ctr: rpc error: code = Unavailable desc = transport is closing\n",
      });
    };
    const io = new FakeIo({ now: T0 });
    const realSleep = io.sleep.bind(io);
    io.sleep = (ms: number) => {
      if (io.sleeps.length === 1) controller.abort(); // stop during the second backoff
      return realSleep(ms);
    };
    io.signal = controller.signal;
    const opts: RecordOptions = {
      stateDir: dir,
      quiet: false,
      flushInterval: 3600,
      keepWindow: 14 * DAY,
      metrics: true,
    };
    assert.equal(await record(containerd, opts, io), 0);
    assert.deepEqual(io.stderr.lines.filter((l) => !l.includes("reconnecting in")), []);
    assert.equal(resyncs, 2);
    // Only the container it did not know, at the time it caught up (after the 1 s backoff).
    assert.deepEqual(said(io).filter((l) => l.startsWith("T ")), [
      `T ${T0 + 1} default ${REF}`,
      `T ${T0} default docker.io/library/probe:1`,
    ]);
    const db = parseUsageDb(await Deno.readTextFile(join(dir, "image_starts")));
    assert.deepEqual(db.entries.get(usageKey("default", REF)), { start: T0 + 1, stop: null });
    assert.equal(db.entries.has(usageKey("default", "docker.io/library/old:1")), false);
    assert.match(seen.reconnecting!, /^ctre_recorder_connected 0$/m);
    assert.match(seen.reconnecting!, /^ctre_recorder_reconnects_total 1$/m);
    assert.match(seen.following!, /^ctre_recorder_connected 1$/m);
    assert.match(metrics(), /^ctre_recorder_connected 0$/m, "disconnected at the end");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("record() asks the event stream for the payloads it reads or prints, no others", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctre-record-" });
  try {
    const controller = new AbortController();
    const containerd = new FakeContainerd();
    let want: ((topic: string) => boolean) | undefined;
    let firstStartWanted: boolean | undefined;
    containerd.events = (wantPayload?: (topic: string) => boolean) => {
      want = wantPayload;
      firstStartWanted = want?.("/tasks/start");
      const start = { time: T0, ns: NS, topic: "/tasks/start", payload: { pid: 1 } };
      return eventStream([start], { code: 1, stderr: "ctr: transport is closing\n" });
    };
    const io = new FakeIo({ now: T0 });
    io.sleep = () => {
      controller.abort();
      return Promise.resolve();
    };
    io.signal = controller.signal;
    const opts: RecordOptions = {
      stateDir: dir,
      quiet: false,
      flushInterval: 3600,
      keepWindow: 14 * DAY,
      metrics: false,
    };
    assert.equal(await record(containerd, opts, io), 0);
    assert.ok(want !== undefined, "the recorder passes a payload filter");
    assert.equal(firstStartWanted, true, "a topic's first payload is printed, so parsed");
    assert.equal(want("/tasks/start"), false, "seen and not handled: not parsed again");
    assert.equal(want("/tasks/exit"), true, "handled topics always");
    assert.equal(want("/images/create"), true);
    assert.equal(want("/tasks/oom"), true, "not seen yet");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
