/**
 * End to end on the containerd of this run (scripts/test.sh runs this file on 1.6.20, 1.7.24 and
 * 2.1.9): the harness runs the version asked for, ctre recognises that version's ctr errors live
 * (missing image on removal, the content-prune "not found"), doctor reports the version and its
 * upstream support, and the harness's clean-up removes that version's shims and their sockets.
 */
import assert from "node:assert/strict";
import { ctrGateway } from "../lib/ctr/ctr_gateway.ts";
import { pruneContentSafely } from "../lib/prune/content_prune.ts";
import { containerdSupport } from "../lib/ctr/containerd_support.ts";
import { type Ctr, systemCtr } from "../lib/ctr/runner.ts";
import {
  processesReferencing,
  shimSocketsOf,
  TestContainerd,
  wantedContainerdVersion,
} from "./support/containerd.ts";
import { runCtre, tempStateDir } from "./support/cli.ts";

const VERSION = wantedContainerdVersion();
const REF = "docker.io/library/ctre-v:1";
const ABSENT = `sha256:${"0".repeat(64)}`;

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

Deno.test({
  name: `containerd ${VERSION}: version, ctr errors, doctor and shim clean-up, live`,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const c = await TestContainerd.start();
    let sockets: string[] = [];
    try {
      await t.step("client and server are the version asked for", async () => {
        const out = await c.ctrOk(["version"]);
        const versions = [...out.matchAll(/Version:\s+v?(\S+)/g)].map((m) => m[1]);
        assert.equal(versions.length, 2, out);
        for (const v of versions) assert.ok(v?.startsWith(VERSION), out);
      });

      await t.step("image rm of a ref someone else removed reads as missing", async () => {
        const digest = await c.importImage("default", REF, "v", [`${REF}-b`]);
        assert.match(digest, /^sha256:/);
        // The gateway's removal, without prune's last-second re-read: ctr itself meets the
        // missing ref.
        const containerd = ctrGateway(systemCtr(c.address));
        const outcome = await containerd.removeImages("default", [
          REF,
          "docker.io/library/gone:1",
        ], false);
        assert.deepEqual(outcome, {
          removed: [REF],
          missing: ["docker.io/library/gone:1"],
          failed: [],
        });
      });

      await t.step(
        "content prune reads this version's 'not found' for a manifest gone since its listing",
        async () => {
          // Content prune strips the layer references of each listed runnable manifest with
          // `ctr content label`; one deleted in between gives the store's NotFound. `content
          // label` of an absent digest is the same Update call: the first strip runs that
          // instead, so the prune meets ctr's real error text of this version.
          const real = systemCtr(c.address);
          const label = ["-n", "default", "content", "label", ABSENT, "ctre.test/x="];
          const direct = await real.run(label);
          assert.equal(direct.code, 1, direct.stderr);
          assert.match(direct.stderr, /not found/);
          let swapped = 0;
          const racing: Ctr = {
            get spawned() {
              return real.spawned;
            },
            stream: (args) => real.stream(args),
            run(args) {
              if (args.slice(0, 4).join(" ") === "-n default content label" && swapped++ === 0) {
                return real.run(label);
              }
              return real.run(args);
            },
          };
          // The image left (`${REF}-b`) is unpacked and its manifest still has layer references.
          const result = await pruneContentSafely(ctrGateway(racing), "default");
          assert.ok(swapped >= 1, "a manifest was stripped");
          assert.equal(result.error, undefined, JSON.stringify(result));
          assert.deepEqual(result.protected, []);
        },
      );

      await t.step("ctre doctor reports the version and upstream's support for it", async () => {
        const stateDir = await tempStateDir();
        try {
          const r = await runCtre(["doctor", "--json"], { address: c.address, stateDir });
          const doc = JSON.parse(r.stdout);
          const check = (name: string) => doc.checks.find((x: { name: string }) => x.name === name);
          assert.match(check("containerd").detail, new RegExp(`version v?${VERSION}`));
          const want = containerdSupport(VERSION, Date.now() / 1000);
          assert.deepEqual(check("containerd support"), { name: "containerd support", ...want });
          assert.equal(r.code, 0, r.stdout + r.stderr);
        } finally {
          await Deno.remove(stateDir, { recursive: true });
        }
      });

      await t.step("a running container's shim socket is found from its state dir", async () => {
        await c.run("default", `${REF}-b`, "c1");
        sockets = await shimSocketsOf(c.dir);
        assert.equal(sockets.length, 1, `shim sockets: ${sockets}`);
        assert.match(sockets[0]!, /^\/run\/containerd\/s\/[0-9a-f]{64}$/);
        assert.ok(await exists(sockets[0]!), sockets[0]);
        await c.stopDaemon(); // the shim and the container keep running without containerd
        const procs = await processesReferencing(c.dir);
        assert.ok(procs.some((p) => p.args.includes("containerd-shim")), JSON.stringify(procs));
      });
    } finally {
      await c.cleanup();
    }
    await t.step(
      "clean-up after containerd died kills the shim and removes its socket",
      async () => {
        assert.deepEqual(await processesReferencing(c.dir), []);
        for (const s of sockets) assert.equal(await exists(s), false, `${s} left behind`);
        assert.equal(await exists(c.dir), false);
      },
    );
  },
});
