/**
 * Conformance of the in-memory node (tests/support/fake_node.ts) with a real containerd: one
 * script of operations runs against both, and after each step what ctre reads (through its own
 * parsers) must agree — refs, how many blobs, snapshots by kind, containers, tasks, exit codes
 * and the error text ctre looks for. Digests differ (the fake's are synthetic), so answers are
 * compared by shape and count, never by digest. A difference fails here instead of hiding a bug
 * in every unit test that trusts the fake.
 */
import assert from "node:assert/strict";
import { type TestContainerd, withContainerd } from "./support/containerd.ts";
import { FakeNode } from "./support/fake_node.ts";
import type { CtrResult } from "../lib/ctr/runner.ts";
import {
  parseContainerLs,
  parseContentLs,
  parseImageLs,
  parseSnapshotLs,
  parseTaskLs,
} from "../lib/ctr/listings.ts";

const NS = "default";
const A = "docker.io/library/conf-a:1";
const A2 = "docker.io/library/conf-a:alias";
const B = "docker.io/library/conf-b:1";
const MISSING = "docker.io/library/conf-missing:1";

/** One side of the comparison: runs ctr commands, and the setup steps ctr cannot script. */
interface Side {
  run(args: string[]): Promise<CtrResult>;
  digestOf(ref: string): Promise<string>;
}

/** What ctre reads of the namespace, without digests. */
async function observe(side: Side): Promise<Record<string, unknown>> {
  const ok = async (args: string[]) => {
    const r = await side.run(["-n", NS, ...args]);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  const images = parseImageLs(await ok(["image", "ls"]));
  const content = parseContentLs(await ok(["content", "ls"]));
  const snapshots = parseSnapshotLs(await ok(["snapshot", "ls"]));
  return {
    refs: images.map((i) => i.ref).sort(),
    blobs: content.length,
    layerRefs: content.reduce(
      (n, b) => n + [...b.labels.keys()].filter((k) => k.includes(".content.l.")).length,
      0,
    ),
    snapshots: snapshots.map((s) => s.kind).sort(),
    containers: parseContainerLs(await ok(["container", "ls"])).map((c) => c.id).sort(),
    tasks: parseTaskLs(await ok(["task", "ls"])).map((t) => `${t.id} ${t.status}`).sort(),
  };
}

/** A step: the same ctr command on both sides; exit codes and `expect` must agree. */
async function same(real: Side, fake: Side, args: string[], expect?: RegExp): Promise<void> {
  const [r, f] = await Promise.all([real.run(["-n", NS, ...args]), fake.run(["-n", NS, ...args])]);
  assert.equal(f.code, r.code, `exit of ctr ${args.join(" ")}: real ${r.stderr} fake ${f.stderr}`);
  if (expect) {
    assert.match(r.stdout + r.stderr, expect, "real");
    assert.match(f.stdout + f.stderr, expect, "fake");
  }
}

/** Runs a GC and waits for it (a lease deleted with --sync): what an earlier step left goes. */
async function settle(side: Side): Promise<void> {
  const lease = (await side.run(["-n", NS, "leases", "create", "--expires", "1h"])).stdout.trim();
  assert.equal((await side.run(["-n", NS, "leases", "delete", "--sync", lease])).code, 0);
}

/**
 * Compares what ctre reads on both sides once each has collected its garbage: containerd's GC
 * after an import or an image rm without --sync runs when it likes (the import's index blob, for
 * one, lingers until then), so an unsettled count would compare timing, not behaviour.
 */
async function compare(real: Side, fake: Side, step: string): Promise<void> {
  await Promise.all([settle(real), settle(fake)]);
  const [r, f] = [await observe(real), await observe(fake)];
  const listing = async (side: Side) => (await side.run(["-n", NS, "content", "ls"])).stdout;
  if (JSON.stringify(f) !== JSON.stringify(r)) {
    const detail = `real:\n${await listing(real)}\nfake:\n${await listing(fake)}`;
    assert.deepEqual(f, r, `after ${step}: the fake differs from containerd\n${detail}`);
  }
}

function realSide(c: TestContainerd): Side {
  return {
    run: (args) => c.ctr(args),
    digestOf: async (ref) =>
      parseImageLs(await c.ctrOk(["-n", NS, "image", "ls"]))
        .find((i) => i.ref === ref)!.digest,
  };
}

function fakeSide(n: FakeNode): Side {
  return {
    run: (args) => n.ctr.run(args),
    digestOf: (ref) => Promise.resolve(n.ns(NS).images.get(ref)!.digest),
  };
}

Deno.test({
  name: "the in-memory node answers a script of operations as containerd does",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await withContainerd(async (c) => {
      const n = new FakeNode();
      const real = realSide(c);
      const fake = fakeSide(n);
      await t.step(
        "images: one unpacked with two tags, one --no-unpack with two layers",
        async () => {
          await c.importImage(NS, A, "conf-a", [A2]);
          await c.importImage(NS, B, "conf-b", [], { unpack: false, layers: 2 });
          const a = n.addImage(NS, A);
          n.tag(NS, A2, a);
          n.addImage(NS, B, { unpacked: false, layers: 2 });
          await compare(real, fake, "the imports");
        },
      );
      await t.step("a running container: containers rm refuses it", async () => {
        await c.run(NS, A, "conf-c");
        n.addContainer(NS, "conf-c", A, "RUNNING", { snapshotOf: await fake.digestOf(A) });
        await compare(real, fake, "the run");
        await same(
          real,
          fake,
          ["containers", "rm", "conf-c"],
          /cannot delete a non stopped container/,
        );
        await compare(real, fake, "the refused rm");
      });
      await t.step("image rm: a tag goes, a missing ref only warns", async () => {
        await same(
          real,
          fake,
          ["image", "rm", A2, MISSING],
          new RegExp(`${MISSING}: image not found`),
        );
        await compare(real, fake, "image rm");
      });
      await t.step("image rm --sync of the --no-unpack image collects its blobs", async () => {
        await same(real, fake, ["image", "rm", "--sync", B]);
        await compare(real, fake, "image rm --sync");
      });
      await t.step("layer references stripped, then a lease deleted with --sync: GC", async () => {
        const digest = await real.digestOf(A);
        const fd = await fake.digestOf(A);
        const labels = async (side: Side, d: string) =>
          parseContentLs((await side.run(["-n", NS, "content", "ls"])).stdout)
            .find((b) => b.digest === d)!.labels;
        for (const [side, d] of [[real, digest], [fake, fd]] as const) {
          const keys = [...(await labels(side, d)).keys()].filter((k) => k.includes(".content.l."));
          const r = await side.run(["-n", NS, "content", "label", d, ...keys.map((k) => `${k}=`)]);
          assert.equal(r.code, 0, r.stderr);
          const lease = (await side.run(["-n", NS, "leases", "create", "--expires", "1h"])).stdout
            .trim();
          assert.equal((await side.run(["-n", NS, "leases", "delete", "--sync", lease])).code, 0);
        }
        await compare(real, fake, "the strip and GC");
      });
      await t.step("content get of a blob that is gone: not found", async () => {
        const gone = "sha256:" + "0".repeat(64);
        await same(real, fake, ["content", "get", gone], /not found/);
      });
      await t.step("the task stopped: containers rm removes it and its snapshot", async () => {
        await c.ctrOk(["-n", NS, "task", "kill", "-s", "SIGKILL", "conf-c"]);
        await c.waitTask(NS, "conf-c", "STOPPED");
        n.ns(NS).containers.get("conf-c")!.status = "STOPPED";
        await compare(real, fake, "the kill");
        await same(real, fake, ["containers", "rm", "conf-c"]);
        await compare(real, fake, "containers rm");
      });
      await t.step("the last image removed with --sync: its snapshots are collected", async () => {
        await same(real, fake, ["image", "rm", "--sync", A]);
        await compare(real, fake, "the last image rm");
      });
    });
  },
});
