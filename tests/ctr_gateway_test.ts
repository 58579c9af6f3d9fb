/**
 * The ctr gateway (lib/ctr/ctr_gateway.ts) against the REAL ctr text of every captured
 * containerd version (tests/testdata/ctr-<minor>/, lineage/): each method runs exactly the ctr
 * command line it should and returns the typed answer; failures keep ctr's reason. The only unit
 * tests besides the parsers' own that speak ctr's text; the others use the typed fake
 * (tests/support/fake_containerd.ts).
 */
import assert from "node:assert/strict";
import { ctrGateway } from "../lib/ctr/ctr_gateway.ts";
import { CtrError, CtrExitError, ParseError } from "../lib/core/errors.ts";
import { fail, FakeCtr, ok } from "./support/fake_ctr.ts";

const VERSIONS = ["1.6", "1.7", "2.1"];
const APP = "docker.io/library/ctre-app:1.0";
const APP_LATEST = "docker.io/library/ctre-app:latest";
const OLD = "docker.io/library/ctre-old:0.1";
const MISSING = "docker.io/library/ctre-missing:1";
const HINT = "(is containerd running, and is --address or CONTAINERD_ADDRESS right?)";

function read(path: string): string {
  return Deno.readTextFileSync(new URL(`./testdata/${path}`, import.meta.url));
}

/** A fake ctr answering each command line from `answers` (joined by spaces). */
function scripted(answers: Record<string, () => ReturnType<typeof ok>>): FakeCtr {
  return new FakeCtr((args) => {
    const a = answers[args.join(" ")];
    return a === undefined ? fail(`ctr: not scripted: ${args.join(" ")}\n`) : a();
  });
}

for (const minor of VERSIONS) {
  const d = `ctr-${minor}`;
  const l = `lineage/ctr-${minor}`;
  Deno.test(`gateway over ctr ${minor}: listings are one command each, typed`, async () => {
    const ctr = scripted({
      "namespace ls -q": () => ok(read(`${d}/namespace_ls_q.txt`)),
      "-n default image ls": () => ok(read(`${d}/image_ls.txt`)),
      [`-n default image ls name=="${APP}" name=="${OLD}"`]: () => ok(read(`${d}/image_ls.txt`)),
      "-n default content ls": () => ok(read(`${d}/content_ls.txt`)),
      "-n default content ls -q": () => ok(read(`${d}/content_ls_q.txt`)),
      "-n default container ls": () => ok(read(`${d}/container_ls.txt`)),
      '-n moby container ls labels."io.cri-containerd.kind"': () =>
        ok(read(`${d}/moby_container_ls.txt`)),
      "-n default task ls": () => ok(read(`${d}/task_ls.txt`)),
      "-n default containers info ctre-running": () => ok(read(`${d}/containers_info.txt`)),
      "-n default snapshot ls": () => ok(read(`${l}/snapshot_ls.txt`)),
      "-n default snapshot --snapshotter overlayfs ls": () => ok(read(`${l}/snapshot_ls.txt`)),
      "-n default leases ls": () => ok(read(`${l}/leases_ls.txt`)),
      "-n default content get sha256:1": () => ok('{"rootfs":{}}\n'),
    });
    const c = ctrGateway(ctr);
    assert.deepEqual(await c.namespaces(), ["default", "k8s.io", "moby"]);
    const images = await c.listImages("default");
    assert.ok(images.some((i) => i.ref === APP && i.digest.startsWith("sha256:")));
    assert.deepEqual(await c.listImages("default", [APP, OLD]), images);
    assert.deepEqual(await c.listImages("default", []), [], "no refs: no ctr");
    const content = await c.listContent("default");
    assert.deepEqual((await c.contentDigests("default")).sort(), content.map((b) => b.digest));
    assert.deepEqual((await c.listContainers("default")).map((x) => x.id), [
      "ctre-created",
      "ctre-exited",
      "ctre-running",
    ]);
    assert.deepEqual(
      (await c.listContainers("moby", "io.cri-containerd.kind")).map((x) => x.image),
      [null],
    );
    assert.ok((await c.listTasks("default")).some((t) => t.status === "RUNNING"));
    assert.equal((await c.containerInfo("default", "ctre-running")).image, APP);
    const snapshots = await c.listSnapshots("default");
    assert.ok(snapshots.length > 0 && snapshots.every((s) => s.kind !== ""));
    assert.deepEqual(await c.listSnapshots("default", "overlayfs"), snapshots);
    assert.ok((await c.listLeases("default")).every((id) => !/\s/.test(id)));
    assert.equal(await c.getContent("default", "sha256:1"), '{"rootfs":{}}\n');
    assert.equal(ctr.spawned, 13, "one ctr process per call, none for an empty ref list");
  });

  Deno.test(`gateway over ctr ${minor}: changes read each outcome from ctr`, async () => {
    const refs = [APP_LATEST, MISSING, OLD];
    const ctr = scripted({
      [`-n default image rm --sync ${refs.join(" ")}`]: () => ({
        code: Number(read(`${d}/image_rm.code`).trim()),
        stdout: read(`${d}/image_rm.stdout`),
        stderr: read(`${d}/image_rm.stderr`),
      }),
      "-n default containers rm ctre-running ctre-exited": () =>
        fail(read(`${d}/container_rm_running.stderr`)),
      "-n default content label sha256:1 containerd.io/gc.ref.content.l.0=": () => ok(),
      "-n default content label sha256:2 containerd.io/gc.ref.content.l.0=": () =>
        fail("ctr: content digest sha256:2: not found\n"),
      [`-n default image label ${APP} ctre.io/removing=1`]: () => ok(`${APP}\n`),
      [`-n default image label ${MISSING} ctre.io/removing=`]: () =>
        fail(`ctr: image "${MISSING}": not found\n`),
      "-n default leases create --expires 1h": () => ok("lease-1\n"),
      "-n default leases delete --sync lease-1": () => ok(),
    });
    const c = ctrGateway(ctr);
    assert.deepEqual(await c.removeImages("default", refs, true), {
      removed: [APP_LATEST, OLD],
      missing: [MISSING],
      failed: [],
    });
    const said = await c.removeContainers("default", ["ctre-running", "ctre-exited"]);
    assert.ok(said.some((line) => line.includes("ctre-running")));
    assert.ok(!said.some((line) => line.includes("ctre-exited")));
    await c.clearContentLabels("default", "sha256:1", ["containerd.io/gc.ref.content.l.0"]);
    const gone = await c.clearContentLabels("default", "sha256:2", [
      "containerd.io/gc.ref.content.l.0",
    ]).then(() => null, (e) => e);
    assert.ok(gone instanceof CtrExitError && /not found/.test(gone.stderr), String(gone));
    await c.labelImage("default", APP, "ctre.io/removing", "1");
    const unlabelled = await c.labelImage("default", MISSING, "ctre.io/removing", "")
      .then(() => null, (e) => e);
    assert.ok(unlabelled instanceof CtrExitError && /not found/.test(unlabelled.stderr));
    const lease = await c.createLease("default", "1h");
    assert.equal(lease, "lease-1");
    await c.deleteLease("default", lease, true);
    assert.equal(ctr.spawned, 8);
  });

  Deno.test(`gateway over ctr ${minor}: image events of one namespace, filtered by containerd`, async () => {
    const lines = read(`${d}/events.txt`).split("\n").filter((x) => x.includes(" /images/"));
    const ctr = new FakeCtr(() => ok(), () => ({ lines }));
    const stream = ctrGateway(ctr).imageEvents("default");
    const got = [];
    for await (const e of stream.events) got.push(e);
    assert.deepEqual(ctr.streams, [["events", 'namespace==default,topic~="^/images/"']]);
    assert.ok(got.length > 0 && got.length === lines.length);
    for (const e of got) {
      assert.ok(!(e instanceof Error), String(e));
      assert.match(e.topic, /^\/images\/(create|update|delete)$/);
      assert.equal(typeof e.payload.name, "string", "the payload names the image");
    }
  });

  Deno.test(`gateway over ctr ${minor}: versions, events, containerd down`, async () => {
    // `containerd --version` (ctr-*/VERSION) and `ctr version` (lineage/ctr-*/VERSION).
    const version = read(`${d}/VERSION`);
    const server = read(`${l}/VERSION`);
    const release = /Server:\s+Version:\s+(\S+)/.exec(server)![1];
    const lines = read(`${d}/events.txt`).split("\n").filter((x) => x !== "");
    const ctr = new FakeCtr(
      (args) => {
        if (args.join(" ") === "--version") return ok(`${version.split("\n")[0]}\n`);
        if (args.join(" ") === "version") return ok(server);
        const down = `${d}/ctr_down`;
        return fail(read(`${down}.stderr`), Number(read(`${down}.code`).trim()));
      },
      () => ({
        lines: [...lines, "not an event"],
        code: 1,
        stderr: read(`${d}/events_end.stderr`),
      }),
    );
    const c = ctrGateway(ctr);
    assert.equal(await c.clientVersion(), version.split("\n")[0]!.trim());
    assert.equal(await c.serverVersion(), release);
    const down = await c.serverVersion({ address: "/k3s.sock", connectTimeout: "2s" })
      .then(() => null, (e) => e);
    assert.ok(down instanceof CtrExitError && down.message.endsWith(HINT), String(down));
    assert.deepEqual(ctr.runs.at(-1), [
      "--address",
      "/k3s.sock",
      "--connect-timeout",
      "2s",
      "version",
    ]);
    const stream = c.events();
    const got = [];
    for await (const e of stream.events) got.push(e);
    assert.equal(got.length, lines.length + 1);
    assert.ok(got.slice(0, -1).every((e) => !(e instanceof Error) && e.ns === "default"));
    assert.ok(got.at(-1) instanceof ParseError);
    assert.match((await stream.done).stderr, /Unavailable/);
    assert.deepEqual(ctr.streams, [["event"]]);
    // Topics the reader refuses come without payload; the others as parsed in full.
    const full = got.slice(0, -1) as { topic: string; payload: Record<string, unknown> }[];
    const wanted = full[0]!.topic;
    const some = [];
    for await (const e of c.events((t) => t === wanted).events) some.push(e);
    assert.equal(some.length, got.length);
    some.slice(0, -1).forEach((e, i) => {
      assert.ok(!(e instanceof Error));
      assert.deepEqual(e.payload, e.topic === wanted ? full[i]!.payload : {}, e.topic);
    });
    assert.ok(full.some((e) => e.topic !== wanted && Object.keys(e.payload).length > 0));
  });

  Deno.test(`gateway over ctr ${minor}: snapshot usage in bytes, flags before arguments`, async () => {
    const usage = read(`${d}/disk_snapshot_usage_b.txt`);
    const ctr = scripted({
      "-n k8s.io snapshot usage -b": () => ok(usage),
      "-n moby snapshot --snapshotter native usage -b": () => ok(usage),
    });
    const c = ctrGateway(ctr);
    const bytes = await c.snapshotUsage("k8s.io");
    // Every snapshot of the capture's listing, each with its bytes (the writable layer w1 wrote
    // 2 MiB, ext4 blocks on top).
    const keys = read(`${d}/disk_snapshot_ls.txt`).trim().split("\n").slice(1)
      .map((line) => line.trim().split(/\s+/)[0]);
    assert.deepEqual([...bytes.keys()].sort(), keys.sort());
    assert.ok([...bytes.values()].every((b) => Number.isInteger(b) && b > 0));
    const w1 = bytes.get("w1")!;
    assert.ok(w1 >= 2 * 1024 * 1024 && w1 < 2.2 * 1024 * 1024, `w1 holds ${w1} bytes`);
    assert.deepEqual(await c.snapshotUsage("moby", "native"), bytes);
    assert.deepEqual(ctr.calls.map((a) => a.join(" ")), [
      "-n k8s.io snapshot usage -b",
      "-n moby snapshot --snapshotter native usage -b",
    ]);
    // Without -b ctr rounds SIZE to one decimal of a unit: refused rather than guessed.
    await assert.rejects(
      () =>
        ctrGateway(scripted({
          "-n k8s.io snapshot usage -b": () => ok(read(`${d}/disk_snapshot_usage.txt`)),
        })).snapshotUsage("k8s.io"),
      ParseError,
    );
  });
}

Deno.test("gateway: a ctr that cannot start is a CtrError, not an exit", async () => {
  const c = ctrGateway(
    new FakeCtr(() => {
      throw new CtrError("Cannot run ctr task ls: ctr is not installed or not on PATH", 127, "");
    }),
  );
  const e = await c.listTasks("default").then(() => null, (e) => e);
  assert.ok(e instanceof CtrError && !(e instanceof CtrExitError), String(e));
});

Deno.test("gateway: image rm with containerd down fails every ref with ctr's reason (real stderr)", async () => {
  const stderr = read("ctr-1.6/ctr_refused.stderr");
  const c = ctrGateway(new FakeCtr(() => fail(stderr)));
  const outcome = await c.removeImages("default", ["x:1", "x:2"], false);
  assert.deepEqual(outcome.removed, []);
  assert.deepEqual(outcome.missing, []);
  assert.deepEqual(outcome.failed.map((f) => f.ref), ["x:1", "x:2"]);
  for (const f of outcome.failed) {
    assert.equal(f.reason, `ctr -n default image rm … exited with code 1: ${stderr.trim()}`);
  }
});
