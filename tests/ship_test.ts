/**
 * What ships: the permission flags compiled in, the systemd units and the installer.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_STATE_DIR, permissionFlags, RUNTIME_FLAGS } from "../lib/cli/permissions.ts";
import { compileArgs, TARGETS } from "../scripts/shipped.ts";
import { ctreArgs, runCtre, tempStateDir } from "./support/cli.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("permissionFlags() allows running ctr and the state dir, nothing else", () => {
  assert.deepEqual(permissionFlags("/var/spool/ctre"), [
    "--allow-run=ctr",
    "--allow-read=/var/spool/ctre",
    "--allow-write=/var/spool/ctre",
  ]);
  assert.throws(() => permissionFlags("/a,b"), /comma/);
});

Deno.test("compileArgs() bakes in exactly the declared flags for the default state dir", async (t) => {
  for (const target of Object.keys(TARGETS) as (keyof typeof TARGETS)[]) {
    await t.step(target, () => {
      const args = compileArgs(target);
      const perms = args.filter((a) =>
        a.startsWith("--allow") || a === "-A" || a.startsWith("--deny")
      );
      assert.deepEqual(perms, permissionFlags(DEFAULT_STATE_DIR));
      for (const f of RUNTIME_FLAGS) assert.ok(args.includes(f), `${f} compiled in`);
      assert.equal(args[args.indexOf("--target") + 1], target);
      assert.equal(args[args.indexOf("--output") + 1], TARGETS[target]);
      assert.equal(args.at(-1), "main.ts");
    });
  }
});

Deno.test("deno.json's start and compile tasks go through scripts/shipped.ts", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).tasks;
  for (const name of ["start", "compile"]) {
    assert.match(tasks[name], /scripts\/shipped\.ts (run|compile)$/);
    assert.doesNotMatch(tasks[name], /--allow-(all|env|net)|-A\b/);
  }
});

Deno.test("the tests run the CLI with exactly the shipped flags for their own state dir", async () => {
  const stateDir = await tempStateDir();
  const args = ctreArgs(["doctor"], { stateDir });
  const perms = args.filter((a) => a.startsWith("--allow") || a === "-A");
  assert.deepEqual(perms, permissionFlags(stateDir));
  // And at run time the CLI holds exactly those: doctor asks Deno.
  const r = await runCtre(["doctor", "--json"], { stateDir, address: "/nonexistent.sock" });
  const doc = JSON.parse(r.stdout);
  const held = doc.checks.find((c: { name: string }) => c.name === "permissions held");
  const notHeld = doc.checks.find((c: { name: string }) => c.name === "permissions not held");
  assert.equal(held.detail, `run ctr, read ${stateDir}, write ${stateDir}`);
  for (
    const p of ["network", "environment variables", "run any other program", "read anywhere else"]
  ) {
    assert.ok(notHeld.detail.includes(p), `${p} not held: ${notHeld.detail}`);
  }
  assert.equal(r.code, 1, "containerd does not answer at a nonexistent socket");
  await Deno.remove(stateDir, { recursive: true });
});

Deno.test("the CLI cannot write outside its state dir and says which flag it lacks", async () => {
  const stateDir = await tempStateDir();
  const other = await Deno.makeTempDir({ prefix: "ctre-other-" });
  // The flags allow only stateDir; --state-dir points elsewhere.
  const args = ctreArgs(["status"], { stateDir }).map((a) => a === stateDir ? other : a);
  assert.deepEqual(args.filter((a) => a.startsWith("--allow")), permissionFlags(stateDir));
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" })
    .output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 1);
  assert.match(stderr, new RegExp(`--allow-read=${other}`));
  assert.equal(stderr.trim().split("\n").length, 1, stderr);
  await Deno.remove(stateDir, { recursive: true });
  await Deno.remove(other, { recursive: true });
});

async function sh(cmd: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    env,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/** Copies of the units with ExecStart pointing at a stub, for systemd-analyze verify. */
async function unitsWithStub(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "ctre-units-" });
  const stub = join(dir, "ctre");
  await Deno.writeTextFile(stub, "#!/bin/sh\n");
  await Deno.chmod(stub, 0o755);
  for await (const e of Deno.readDir(join(ROOT, "scripts/systemd"))) {
    if (!/\.(service|timer)$/.test(e.name)) continue;
    const text = await Deno.readTextFile(join(ROOT, "scripts/systemd", e.name));
    await Deno.writeTextFile(join(dir, e.name), text.replaceAll("/usr/local/bin/ctre", stub));
  }
  return dir;
}

Deno.test("the systemd units verify, and both services' exposure is 1.0", async (t) => {
  const dir = await unitsWithStub();
  for (const unit of ["ctre-record.service", "ctre-prune.service", "ctre-prune.timer"]) {
    await t.step(`systemd-analyze verify ${unit}`, async () => {
      const r = await sh(["systemd-analyze", "verify", join(dir, unit)]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr.trim(), "", r.stderr);
    });
  }
  for (const unit of ["ctre-record.service", "ctre-prune.service"]) {
    await t.step(`systemd-analyze security --offline=true ${unit}`, async () => {
      const r = await sh([
        "systemd-analyze",
        "security",
        "--offline=true",
        join(ROOT, "scripts/systemd", unit),
      ]);
      const m = new RegExp(`Overall exposure level for ${unit}: ([\\d.]+)`).exec(r.stdout);
      assert.ok(m, r.stdout + r.stderr);
      assert.ok(Number(m[1]) <= 1.0, `exposure ${m[1]}`);
    });
  }
  await Deno.remove(dir, { recursive: true });
});

/** What install.sh writes from the installed ctre's own output. */
const GENERATED = [
  "usr/local/share/man/man1/ctre.1",
  "usr/local/share/bash-completion/completions/ctre",
  "usr/local/share/zsh/site-functions/_ctre",
  "usr/local/share/fish/vendor_completions.d/ctre.fish",
];

Deno.test("scripts/install.sh installs into DESTDIR and --uninstall removes it again", async () => {
  const dest = await Deno.makeTempDir({ prefix: "ctre-destdir-" });
  const bin = join(dest, "..", `ctre-bin-${crypto.randomUUID()}`);
  // A stand-in binary: install.sh asks the ctre it installs for its man page and completions.
  await Deno.writeTextFile(bin, '#!/bin/sh\necho "ctre $*"\n', { mode: 0o755 });
  const env = { DESTDIR: dest };
  const install = await sh(["bash", join(ROOT, "scripts/install.sh"), bin], env);
  assert.equal(install.code, 0, install.stderr);
  for (
    const f of [
      "usr/local/bin/ctre",
      "etc/systemd/system/ctre-record.service",
      "etc/systemd/system/ctre-prune.service",
      "etc/systemd/system/ctre-prune.timer",
      "etc/default/ctre",
      "etc/tmpfiles.d/ctre.conf",
      ...GENERATED,
    ]
  ) {
    assert.ok((await Deno.stat(join(dest, f))).isFile, f);
  }
  assert.equal(
    await Deno.readTextFile(join(dest, "usr/local/share/man/man1/ctre.1")),
    "ctre man\n",
    "the man page is what the installed ctre prints",
  );
  assert.equal((await Deno.stat(join(dest, "usr/local/bin/ctre"))).mode! & 0o777, 0o755);
  assert.equal((await Deno.stat(join(dest, "var/spool/ctre"))).mode! & 0o777, 0o711);
  const un = await sh(["bash", join(ROOT, "scripts/install.sh"), "--uninstall"], env);
  assert.equal(un.code, 0, un.stderr);
  await assert.rejects(Deno.stat(join(dest, "usr/local/bin/ctre")));
  await assert.rejects(Deno.stat(join(dest, "etc/systemd/system/ctre-record.service")));
  for (const f of GENERATED) await assert.rejects(Deno.stat(join(dest, f)), f);
  assert.ok((await Deno.stat(join(dest, "var/spool/ctre"))).isDirectory, "usage DB kept");
  const purge = await sh(["bash", join(ROOT, "scripts/install.sh"), "--uninstall", "--purge"], env);
  assert.equal(purge.code, 0, purge.stderr);
  await assert.rejects(Deno.stat(join(dest, "var/spool/ctre")));
  const missing = await sh(["bash", join(ROOT, "scripts/install.sh"), join(dest, "nope")], env);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /not found/);
  await Deno.remove(dest, { recursive: true });
  await Deno.remove(bin);
});
