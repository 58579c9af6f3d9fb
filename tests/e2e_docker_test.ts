/**
 * End to end on a real dockerd (Debian trixie 26.1.5, containerd image store, namespace `moby`)
 * on a private containerd: ctre prune keeps what docker containers run from (running, stopped,
 * a committed two-layer image, a `moby-dangling` ref), removes only the unused image, leaves
 * moby's content alone, and docker start/commit/save of the kept images still work. The
 * recorder records a `docker run --rm`.
 *
 * Docker 26 refuses containerd 1.6: under CTRE_TEST_CONTAINERD=1.6.20 this file is ignored with
 * a message; it runs under 1.7.24 and 2.1.9.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { withContainerd } from "./support/containerd.ts";
import { PRUNE_NOW, runCtre, spawnCtre, tempStateDir } from "./support/cli.ts";
import { dockerUnavailable, type TestDockerd, withDockerd } from "./support/dockerd.ts";
import { buildOciImage } from "./support/oci_image.ts";

const img = (name: string) => `docker.io/library/${name}:1`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Why this file cannot run here (containerd on PATH older than 1.7, no docker), or null. */
async function skipReason(): Promise<string | null> {
  try {
    const out = await new Deno.Command("containerd", { args: ["--version"] }).output();
    const v = /\sv?(\d+)\.(\d+)\.\d+/.exec(new TextDecoder().decode(out.stdout));
    if (v && (Number(v[1]) < 1 || (Number(v[1]) === 1 && Number(v[2]) < 7))) {
      return `containerd ${v[1]}.${v[2]} on PATH: Docker 26 needs containerd 1.7+ ` +
        `(run with CTRE_TEST_CONTAINERD=1.7.24 or 2.1.9)`;
    }
  } catch (e) {
    return `no containerd: ${e}`;
  }
  return null;
}

const skip = await skipReason();
if (skip !== null) {
  // deno-lint-ignore no-console
  console.error(`e2e_docker_test.ts ignored: ${skip}`);
}

interface JsonImage {
  refs: string[];
  decision: string;
  reason: string;
  users: { id: string; how: string }[] | null;
}

async function idOf(d: TestDockerd, name: string): Promise<string> {
  return await d.dockerOk(["inspect", "--format", "{{.Id}}", name]);
}

Deno.test({
  name: "dockerd: prune keeps what docker containers run from, removes only the unused image",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await withContainerd(async (c) => {
      const why = await dockerUnavailable(c);
      assert.equal(why, null, `dockerd cannot run: ${why}`);
      await withDockerd(c, async (d) => {
        for (const name of ["run", "stop", "dang", "unused", "rec"]) {
          await d.load(await buildOciImage(img(name), name));
        }
        const run = ["run", "-d", "--network", "none"];
        await d.dockerOk([...run, "--name", "c-run", img("run"), "sleep", "100000"]);
        await d.dockerOk([...run, "--name", "c-stop", img("stop"), "true"]);
        await d.dockerOk(["wait", "c-stop"]);
        // Two layers: a change committed on top of run:1 (chain ID != either diff ID).
        await d.dockerOk(["exec", "c-run", "sh", "-c", "echo changed > /changed"]);
        await d.dockerOk(["commit", "c-run", img("two")]);
        await d.dockerOk([...run, "--name", "c-two", img("two"), "sleep", "100000"]);
        await d.dockerOk([...run, "--name", "c-dang", img("dang"), "sleep", "100000"]);
        await d.dockerOk(["rmi", "-f", img("dang")]);
        const refs = await c.imageRefs("moby");
        const dangling = refs.find((r) => r.startsWith("moby-dangling@sha256:"));
        assert.ok(dangling, `docker rmi -f left a moby-dangling ref: ${refs}`);
        const ids = {
          run: await idOf(d, "c-run"),
          stop: await idOf(d, "c-stop"),
          two: await idOf(d, "c-two"),
          dang: await idOf(d, "c-dang"),
        };
        // What ctr shows: the stopped container is no containerd container.
        const ctrIds = await c.containerIds("moby");
        assert.ok(!ctrIds.includes(ids.stop), "dockerd deletes a stopped container in ctr");
        assert.ok(ctrIds.includes(ids.run));
        const stateDir = await tempStateDir();
        const opts = { address: c.address, stateDir };
        try {
          await t.step("the recorder records a docker run --rm by its image", async () => {
            const rec = spawnCtre(["record-image-starts", "--flush-interval", "1s"], opts);
            let out = "";
            const pump = (async () => {
              for await (const s of rec.stdout.pipeThrough(new TextDecoderStream())) out += s;
            })();
            const errs = new Response(rec.stderr).text();
            try {
              const deadline = Date.now() + 20_000;
              while (!out.includes("Listening") && Date.now() < deadline) await sleep(50);
              // "Listening" comes before `ctr event` is connected: probe until an event is seen
              // (a namespace created and removed), so the docker run below cannot be missed.
              for (let i = 0; !out.includes("'/namespaces/create'") && Date.now() < deadline; i++) {
                await c.ctrOk(["namespace", "create", `probe-${i}`]);
                await c.ctrOk(["namespace", "rm", `probe-${i}`]);
                await sleep(300);
              }
              await d.dockerOk(["run", "--rm", "--network", "none", img("rec"), "true"]);
              const re = new RegExp(`^t \\d+ moby ${img("rec")}$`, "m");
              while (!re.test(out) && Date.now() < deadline) await sleep(50);
            } finally {
              rec.kill("SIGTERM");
              await rec.status;
              await pump;
            }
            const stderr = await errs;
            assert.match(out, new RegExp(`^T \\d+ moby ${img("rec")}$`, "m"), out + stderr);
            assert.match(out, new RegExp(`^t \\d+ moby ${img("rec")}$`, "m"), out + stderr);
            const db = await Deno.readTextFile(join(stateDir, "image_starts"));
            assert.match(db, new RegExp(`^\\d+ \\d+ moby ${img("rec")}$`, "m"));
            // Start over without usage, so only in-use decides below.
            await Deno.remove(join(stateDir, "image_starts"));
          });

          await t.step("prune --force removes only the unused image", async () => {
            const r = await runCtre(PRUNE_NOW, opts);
            assert.equal(r.code, 0, r.stderr);
            const doc = JSON.parse(r.stdout) as { images: JsonImage[] };
            const byRef = (ref: string) => doc.images.find((i) => i.refs.includes(ref))!;
            const how = (ref: string) =>
              byRef(ref).users?.map((u) => `${u.id}:${u.how}`).sort() ?? [];
            assert.deepEqual(how(img("run")), [`${ids.run}:snapshot`]);
            assert.deepEqual(how(img("stop")), [`${ids.stop}:lease`]);
            assert.deepEqual(how(img("two")), [`${ids.two}:snapshot`]);
            assert.deepEqual(how(dangling), [`${ids.dang}:snapshot`, `${dangling}:moby-dangling`]);
            assert.equal(byRef(img("unused")).decision, "prune");
            assert.equal(byRef(img("rec")).decision, "prune");
            const left = await c.imageRefs("moby");
            assert.deepEqual(
              left,
              [img("run"), img("stop"), img("two"), dangling].sort(),
              `left: ${left}`,
            );
            assert.match(r.stderr, /\(content prune\) moby skipped: dockerd needs the layer/);
          });

          await t.step("docker still has the kept images whole", async () => {
            await d.dockerOk(["image", "inspect", img("run")]);
            await d.dockerOk(["image", "inspect", img("two")]);
            await d.dockerOk(["start", "c-stop"]);
            await d.dockerOk(["wait", "c-stop"]);
            await d.dockerOk(["commit", "c-stop", img("stop-committed")]);
            await d.dockerOk(["commit", "c-two", img("two-committed")]);
            for (const name of ["run", "stop", "two"]) {
              const tar = join(c.dir, `${name}.tar`);
              await d.dockerOk(["save", "-o", tar, img(name)]);
              assert.ok((await Deno.stat(tar)).size > 1_000_000, `${name} saved with its layers`);
            }
          });
        } finally {
          await Deno.remove(stateDir, { recursive: true }).catch(() => {});
        }
      });
    });
  },
});
