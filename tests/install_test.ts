/**
 * scripts/install.sh --from-source: the installed `ctre` runs the installed sources with exactly
 * the shipped permissions (tests/systemd_test.ts boots it under a real systemd).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_STATE_DIR, permissionFlags } from "../lib/cli/permissions.ts";
import { RUN_FLAGS, wrapperScript } from "../scripts/source_wrapper.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SOURCE_DIR = "/usr/local/lib/ctre";
/** What install.sh writes under /usr/local/share, and the ctre command that prints each. */
const DOCS: [string, string[]][] = [
  ["usr/local/share/man/man1/ctre.1", ["man"]],
  ["usr/local/share/bash-completion/completions/ctre", ["completion", "bash"]],
  ["usr/local/share/zsh/site-functions/_ctre", ["completion", "zsh"]],
  ["usr/local/share/fish/vendor_completions.d/ctre.fish", ["completion", "fish"]],
];

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

/** The words of the wrapper's exec line (single-quoted words, then "$@"). */
function execWords(script: string): string[] {
  const line = script.split("\n").find((l) => l.startsWith("exec "));
  assert.ok(line, script);
  assert.ok(line.endsWith(' "$@"'), line);
  return [...line.slice(5, -5).matchAll(/'((?:[^']|'\\'')*)'/g)].map((m) =>
    m[1]!.replaceAll(`'\\''`, "'")
  );
}

Deno.test("the from-source wrapper runs deno with exactly the shipped permissions", () => {
  const words = execWords(wrapperScript("/opt/it's/deno", SOURCE_DIR));
  assert.deepEqual(words, [
    "/opt/it's/deno",
    "run",
    ...RUN_FLAGS,
    ...permissionFlags(DEFAULT_STATE_DIR),
    `${SOURCE_DIR}/main.ts`,
  ]);
  assert.ok(!words.some((w) => /^--allow-(all|env|net|sys|ffi)|^-A$/.test(w)), words.join(" "));
});

Deno.test("install.sh --from-source installs deno, the sources and the wrapper; --uninstall removes them", async () => {
  const dest = await Deno.makeTempDir({ prefix: "ctre-destdir-" });
  try {
    const env = { DESTDIR: dest, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
    const r = await sh(["bash", join(ROOT, "scripts/install.sh"), "--from-source"], env);
    assert.equal(r.code, 0, r.stderr);
    const wrapper = await Deno.readTextFile(join(dest, "usr/local/bin/ctre"));
    assert.equal((await Deno.stat(join(dest, "usr/local/bin/ctre"))).mode! & 0o777, 0o755);
    assert.deepEqual(execWords(wrapper).slice(0, 2), [`${SOURCE_DIR}/deno`, "run"]);
    assert.deepEqual(
      execWords(wrapper).filter((w) => w.startsWith("--allow")),
      permissionFlags(DEFAULT_STATE_DIR),
    );
    for (const f of ["deno", "main.ts", "lib/cli/permissions.ts", "lib/cli/cli.ts"]) {
      assert.ok((await Deno.stat(join(dest, SOURCE_DIR, f))).isFile, f);
    }
    // The installed copy runs: the same wrapper, pointed into DESTDIR.
    const inDest = join(dest, "ctre-in-destdir");
    await Deno.writeTextFile(inDest, wrapper.replaceAll(SOURCE_DIR, join(dest, SOURCE_DIR)));
    const version = await sh(["sh", inDest, "--version"]);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, /^ctre /);
    // The man page and the completions, as the installed ctre prints them.
    for (const [file, args] of DOCS) {
      const printed = await sh(["sh", inDest, ...args]);
      assert.equal(printed.code, 0, printed.stderr);
      assert.equal(await Deno.readTextFile(join(dest, file)), printed.stdout, file);
      assert.equal((await Deno.stat(join(dest, file))).mode! & 0o777, 0o644, file);
    }
    const groff = await sh(["groff", "-man", "-ww", "-z", join(dest, DOCS[0]![0])]);
    assert.deepEqual([groff.code, groff.stderr], [0, ""]);
    // A binary is not taken together with --from-source.
    const both = await sh(["bash", join(ROOT, "scripts/install.sh"), "--from-source", "x"], env);
    assert.equal(both.code, 1);
    assert.match(both.stderr, /takes no BINARY/);
    const un = await sh(["bash", join(ROOT, "scripts/install.sh"), "--uninstall"], env);
    assert.equal(un.code, 0, un.stderr);
    await assert.rejects(Deno.stat(join(dest, SOURCE_DIR)));
    await assert.rejects(Deno.stat(join(dest, "usr/local/bin/ctre")));
    await assert.rejects(Deno.stat(join(dest, "etc/tmpfiles.d/ctre.conf")));
    for (const [file] of DOCS) await assert.rejects(Deno.stat(join(dest, file)), file);
  } finally {
    await Deno.remove(dest, { recursive: true });
  }
});
