/**
 * Regenerates the disk fixtures (tests/testdata/ctr-<major.minor>/disk_*.txt) from a real
 * containerd: images a and b share an 8 MB base layer (busybox and 6 MiB of random bytes) and add
 * 4 and 3 MiB of their own, c (5 MiB) is imported with --no-unpack, container w1 runs a and
 * writes 2 MiB into its writable layer; then `ctr snapshot usage` (with and without -b),
 * `snapshot ls`, `content ls`, `image ls`. Digests differ per capture (random layers).
 *
 *   v=2.1.9; PATH="$(bash scripts/containerd_bin.sh $v):$PATH" CTRE_TEST_CONTAINERD=$v \
 *     deno run --allow-read --allow-write --allow-run --allow-env \
 *     tests/support/capture_disk_fixtures.ts
 *
 * Needs root, containerd, ctr, runc, /bin/busybox.
 *
 * @module
 */
import { TestContainerd } from "./containerd.ts";
import { diskLayout, MiB, randomLayer } from "./disk_images.ts";

const NS = ["-n", "default"];

async function capture(c: TestContainerd, out: string): Promise<void> {
  const base = await randomLayer("base", 6 * MiB, true);
  const shared = await diskLayout([
    { ref: "docker.io/library/a:1", layers: [base, await randomLayer("a", 4 * MiB)] },
    { ref: "docker.io/library/b:1", layers: [base, await randomLayer("b", 3 * MiB)] },
  ]);
  const packed = await diskLayout([
    { ref: "docker.io/library/c:1", layers: [await randomLayer("c", 5 * MiB, true)] },
  ]);
  for (
    const [name, layout, flags] of [["s", shared, []], ["p", packed, ["--no-unpack"]]] as const
  ) {
    await Deno.writeFile(`${c.dir}/${name}.tar`, layout.tar);
    await c.ctrOk([...NS, "image", "import", ...flags, `${c.dir}/${name}.tar`]);
  }
  await c.run("default", "docker.io/library/a:1", "w1");
  const dd = ["dd", "if=/a.bin", "of=/w.bin", "bs=1048576", "count=2"];
  await c.ctrOk([...NS, "task", "exec", "--exec-id", "dd1", "w1", ...dd]);
  const files: [string, string[]][] = [
    ["disk_snapshot_usage.txt", ["snapshot", "usage"]],
    ["disk_snapshot_usage_b.txt", ["snapshot", "usage", "-b"]],
    ["disk_snapshot_ls.txt", ["snapshot", "ls"]],
    ["disk_content_ls.txt", ["content", "ls"]],
    ["disk_image_ls.txt", ["image", "ls"]],
  ];
  for (const [name, args] of files) {
    const r = await c.ctrRaw([...NS, ...args]);
    if (r.code !== 0) throw new Error(`ctr ${args.join(" ")} exited ${r.code}`);
    await Deno.writeFile(`${out}/${name}`, r.stdout);
  }
}

if (import.meta.main) {
  const c = await TestContainerd.start({ rootExt4: "200M" });
  try {
    const v = await c.ctrOk(["version"]);
    const minor = /Server:[\s\S]*?Version:\s+v?(\d+\.\d+)/.exec(v)?.[1] ?? "unknown";
    await capture(c, new URL(`../testdata/ctr-${minor}`, import.meta.url).pathname);
  } finally {
    await c.cleanup();
  }
}
