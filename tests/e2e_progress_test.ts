/**
 * End to end: a forced prune on a terminal (a pty, tests/support/pty.ts) shows one updating
 * progress line for the removal, the container clean-up and the content prune, each erased
 * before the next line; piped, the same run prints no progress and no control characters.
 * Against a private, real containerd; the images really go.
 */
import assert from "node:assert/strict";
import { withContainerd } from "./support/containerd.ts";
import { ctreArgs, runCtre, tempStateDir } from "./support/cli.ts";
import { runOnPty } from "./support/pty.ts";

const img = (name: string) => `docker.io/library/${name}:1`;
const NOW = ["--min-age", "0", "--used-within", "0", "--double-check", "0"];

Deno.test("prune --force: one updating progress line on a terminal, none in a pipe", () =>
  withContainerd(async (c) => {
    for (const name of ["a", "b", "c"]) await c.importImage("default", img(name), name);
    await c.importImage("k8s.io", img("d"), "d");
    const stateDir = await tempStateDir();
    const opts = { stateDir, address: c.address };

    const argv = [Deno.execPath(), ...ctreArgs(["prune", "--force", ...NOW], opts)];
    const pty = await runOnPty(argv, { NO_COLOR: "1" });
    const out = pty.output;
    assert.equal(pty.code, 0, out + pty.stderr);
    assert.ok(out.includes("\r\x1b[Kremoving images 0/4"), JSON.stringify(out));
    assert.ok(out.includes("\r\x1b[Kremoving images 4/4"), JSON.stringify(out));
    // deno-lint-ignore no-control-regex -- the terminal control sequences are what is tested
    assert.match(out, /\r\x1b\[Kcleaning up containers in default, namespace \d\/2/);
    // deno-lint-ignore no-control-regex -- the terminal control sequences are what is tested
    assert.match(out, /\r\x1b\[Kpruning content in k8s\.io, namespace \d\/2/);
    // The line is erased before every other line: "(deleted) …" starts at the left margin.
    // deno-lint-ignore no-control-regex -- the terminal control sequences are what is tested
    assert.match(out, /\r\x1b\[K\(deleted\) default docker\.io\/library\/a:1\r?\n/);
    assert.deepEqual(await c.imageRefs("default"), []);
    assert.deepEqual(await c.imageRefs("k8s.io"), []);

    for (const name of ["e", "f"]) await c.importImage("default", img(name), name);
    const piped = await runCtre(["prune", "--force", ...NOW], opts);
    assert.equal(piped.code, 0, piped.stderr);
    assert.match(piped.stdout, /^Removed 2 of 2 images$/m);
    // deno-lint-ignore no-control-regex -- the terminal control sequences are what is tested
    assert.ok(!/[\r\x1b]/.test(piped.stdout + piped.stderr), JSON.stringify(piped.stderr));
    assert.deepEqual(await c.imageRefs("default"), []);
  }));
