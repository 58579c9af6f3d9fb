/**
 * `ctre doctor` on a k3s/RKE2-like node: nothing answers at ctr's default socket, a real
 * containerd answers at /run/k3s/containerd/containerd.sock (here a symlink to a private test
 * containerd's socket, made only when that path is free and removed afterwards).
 */
import assert from "node:assert/strict";
import { ctreArgs, tempStateDir } from "./support/cli.ts";
import { TEMP_PREFIX, withContainerd } from "./support/containerd.ts";
import { K3S_SOCKET } from "../lib/ops/doctor.ts";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether K3S_SOCKET is taken by something else than a leftover of this test. A symlink into a
 * test containerd's temp dir that no longer exists is one (a run killed before its clean-up): it
 * is removed here, so it cannot ignore this test for good.
 */
function k3sSocketTaken(): boolean {
  let target: string;
  try {
    target = Deno.readLinkSync(K3S_SOCKET);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    return true; // a real socket or file: not ours
  }
  const ours = target.split("/").some((part) => part.startsWith(TEMP_PREFIX));
  let live = true;
  try {
    Deno.statSync(target);
  } catch {
    live = false;
  }
  if (!ours || live) return true;
  Deno.removeSync(K3S_SOCKET);
  return false;
}

Deno.test({
  name: "ctre doctor without --address finds the k3s/RKE2 socket and names the flag " +
    `(ignored where ${K3S_SOCKET} is taken: a real k3s)`,
  ignore: k3sSocketTaken(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withContainerd(async (c) => {
      const stateDir = await tempStateDir();
      const made: string[] = [];
      try {
        for (const dir of ["/run/k3s", "/run/k3s/containerd"]) {
          if (!await exists(dir)) {
            await Deno.mkdir(dir);
            made.unshift(dir);
          }
        }
        try {
          await Deno.symlink(c.address, K3S_SOCKET);
        } catch (e) {
          if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
          // Made meanwhile by something else (another test run): not ours to use or remove.
          throw new Error(`${K3S_SOCKET} was taken while the test started; run it again`);
        }
        made.unshift(K3S_SOCKET);
        const run = async () => {
          const out = await new Deno.Command(Deno.execPath(), {
            args: ctreArgs(["doctor", "--json"], { stateDir }),
            stdin: "null",
            stdout: "piped",
            stderr: "piped",
            // ctr's default socket: nothing there (ctr reads CONTAINERD_ADDRESS itself).
            env: { NO_COLOR: "1", CONTAINERD_ADDRESS: `${stateDir}/no-containerd.sock` },
          }).output();
          return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
        };
        const r = await run();
        assert.equal(r.code, 1, "prune would fail without --address");
        const checks: { name: string; status: string; detail: string }[] =
          JSON.parse(r.stdout).checks;
        const k3s = checks.find((c) => c.name === "k3s/RKE2 socket");
        assert.ok(k3s, r.stdout);
        assert.equal(k3s.status, "warn");
        assert.match(k3s.detail, new RegExp(`--address ${K3S_SOCKET}`));
        assert.equal(checks.find((c) => c.name === "containerd")?.status, "fail");
        // Nothing at the k3s socket either: said so, as information.
        await Deno.remove(K3S_SOCKET);
        made.shift();
        const none = JSON.parse((await run()).stdout).checks
          .find((c: { name: string }) => c.name === "k3s/RKE2 socket");
        assert.equal(none?.status, "info");
      } finally {
        for (const p of made) await Deno.remove(p).catch(() => {});
        await Deno.remove(stateDir, { recursive: true }).catch(() => {});
      }
    });
  },
});
