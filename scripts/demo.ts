// deno-lint-ignore-file no-console
/**
 * The demo: a throwaway containerd in a temp dir with sample images and containers, on which
 * ctre (run under exactly its shipped permissions) shows what it would prune and why, then
 * prunes. Needs root, containerd, runc and busybox-static (scripts/setup_demo.sh).
 *
 *   bash scripts/demo.sh
 *
 * @module
 */
import { join } from "node:path";
import { ctreArgs } from "../tests/support/cli.ts";
import { withContainerd } from "../tests/support/containerd.ts";

const DAY = 86400;
const img = (name: string) => `docker.io/library/${name}:1`;

async function ctre(args: string[], address: string, stateDir: string): Promise<void> {
  console.log(`\n$ ctre ${args.join(" ")}`);
  const child = new Deno.Command(Deno.execPath(), {
    args: ctreArgs(args, { address, stateDir }),
    stdin: "null",
  }).spawn();
  const { code } = await child.status;
  console.log(`(exit ${code})`);
}

await withContainerd(async (c) => {
  const stateDir = await Deno.makeTempDir({ prefix: "ctre-demo-state-" });
  console.log(`A throwaway containerd at ${c.address}; ctre's state dir is ${stateDir}.`);
  console.log("Importing sample images (busybox with one file varied)...");
  const old: string[] = [];
  for (const name of ["web", "worker", "batch", "legacy", "recent"]) {
    old.push(await c.importImage("default", img(name), name));
  }
  await c.importImage("default", img("fresh"), "fresh");
  const pause = await c.importImage("k8s.io", "registry.k8s.io/pause:3.9", "pause");
  const api = await c.importImage("k8s.io", img("api"), "api");
  const oldApi = await c.importImage("k8s.io", "docker.io/library/api:0", "api-0");
  await c.label("k8s.io", "registry.k8s.io/pause:3.9", "io.cri-containerd.pinned=pinned");
  console.log("Backdating their content 30 days (all but fresh:1)...");
  await c.ageContent("default", old, 30 * DAY);
  await c.ageContent("k8s.io", [pause, api, oldApi], 30 * DAY);
  console.log(
    "Starting containers: web (running), worker (created, not started), api (running)...",
  );
  await c.run("default", img("web"), "web");
  await c.create("default", img("worker"), "worker");
  await c.run("k8s.io", img("api"), "api");
  const now = Math.floor(Date.now() / 1000);
  await Deno.writeTextFile(
    join(stateDir, "image_starts"),
    `${now - 2 * 3600} ${now - 3600} default ${img("recent")}\n`,
  );
  console.log("The usage DB says recent:1 ran two hours ago.");
  console.log("\n$ ctr -n default image ls -q && ctr -n k8s.io image ls -q");
  console.log(await c.ctrOk(["-n", "default", "image", "ls", "-q"]));
  console.log(await c.ctrOk(["-n", "k8s.io", "image", "ls", "-q"]));

  await ctre(["prune", "--dry-run", "--verbose", "--double-check", "0"], c.address, stateDir);
  // --root: this containerd's root, so the disk figure names the right filesystem (measuring it
  // needs --allow-sys=statfs, which the shipped permissions do not carry: ctre says so).
  await ctre(
    ["prune", "--force", "--double-check", "3s", "--root", `${c.dir}/root`],
    c.address,
    stateDir,
  );

  console.log("\nWhat is left:");
  console.log(await c.ctrOk(["-n", "default", "image", "ls", "-q"]));
  console.log(await c.ctrOk(["-n", "k8s.io", "image", "ls", "-q"]));
  await Deno.remove(stateDir, { recursive: true });
});
