/**
 * `ctre completion bash|zsh|fish`, each script printed by the real entry point and loaded into
 * the real shell: bash through `complete -p` and its completion function with COMP_WORDS and
 * COMP_CWORD set, zsh through its completion system in a pty (tests/support/zsh_complete.zsh),
 * fish through `complete -C`. The expected words come from the command and options tables, so a
 * flag added to a table must show up in all three. Namespaces come from a real containerd.
 */
import assert from "node:assert/strict";
import { COMMAND_SPECS, type Shell, SHELLS, TOP_OPTIONS } from "../lib/cli/cli.ts";
import type { OptionTable } from "../lib/cli/options.ts";
import { runCtre, tempStateDir } from "./support/cli.ts";
import { withContainerd } from "./support/containerd.ts";

const ZSH_COMPLETE = new URL("./support/zsh_complete.zsh", import.meta.url).pathname;

async function has(program: string): Promise<boolean> {
  const r = await new Deno.Command("sh", { args: ["-c", `command -v ${program}`], stdout: "null" })
    .output();
  return r.success;
}
const MISSING = Object.fromEntries(
  await Promise.all(SHELLS.map(async (s) => [s, !(await has(s))] as const)),
) as Record<Shell, boolean>;

/** The script `ctre completion <shell>` prints, written to a temp file. */
async function scriptFile(shell: Shell): Promise<string> {
  const stateDir = await tempStateDir();
  const r = await runCtre(["completion", shell], { stateDir });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  const file = `${stateDir}/ctre.${shell}`;
  await Deno.writeTextFile(file, r.stdout);
  return file;
}

async function output(cmd: string, args: string[], env: Record<string, string> = {}) {
  const r = await new Deno.Command(cmd, { args, env, stdin: "null" }).output();
  const text = new TextDecoder().decode(r.stdout);
  assert.equal(r.code, 0, `${cmd} failed: ${new TextDecoder().decode(r.stderr)}`);
  return text;
}

/** What `shell` offers after `line` (words separated by single spaces; a trailing space: a new word). */
async function complete(shell: Shell, file: string, line: string): Promise<string[]> {
  let out: string;
  if (shell === "bash") {
    // bash splits "--opt=" at "=" (COMP_WORDBREAKS); as readline would, so do we.
    const words = line.replace(/=/g, " = ").replace(/ = $/, " =").split(" ");
    if (line.endsWith("=")) words.push("");
    out = await output("bash", [
      "--norc",
      "--noprofile",
      "-c",
      'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _ctre; ' +
      'printf "%s\\n" "${COMPREPLY[@]}"',
      "bash",
      file,
      ...words,
    ]);
  } else if (shell === "zsh") {
    out = await output("zsh", [ZSH_COMPLETE, line], { CTRE_ZSH_COMPLETION: file });
  } else {
    out = await output("fish", ["--no-config", "-c", `source ${file}; complete -C '${line}'`]);
  }
  return [...new Set(out.split("\n").map((l) => l.split("\t")[0]!).filter((l) => l !== ""))]
    .sort();
}

/** Every listed flag of a table, short and long. */
function flagsOf(table: OptionTable): string[] {
  return Object.entries(table).filter(([, o]) => !o.hidden)
    .flatMap(([name, o]) => [...(o.short ? [`-${o.short}`] : []), `--${name}`]);
}

const sorted = (xs: Iterable<string>) => [...xs].sort();

for (const shell of SHELLS) {
  Deno.test({
    name: `completion ${shell}: commands, flags and closed sets from the tables` +
      (MISSING[shell] ? ` (ignored: ${shell} is not installed; scripts/setup.sh installs it)` : ""),
    ignore: MISSING[shell],
    fn: async (t) => {
      const file = await scriptFile(shell);
      if (shell === "bash") {
        const p = await output("bash", ["--norc", "-c", `source ${file}; complete -p ctre`]);
        assert.equal(p.trim(), "complete -F _ctre ctre");
      }
      await t.step("the commands", async () => {
        assert.deepEqual(
          await complete(shell, file, "ctre "),
          sorted(COMMAND_SPECS.map((c) => c.name)),
        );
        assert.deepEqual(await complete(shell, file, "ctre pr"), ["prune"]);
      });
      await t.step("ctre's own flags", async () => {
        const want = flagsOf(TOP_OPTIONS);
        assert.deepEqual(await complete(shell, file, "ctre -"), sorted(want));
      });
      for (const c of COMMAND_SPECS) {
        await t.step(`every flag of ${c.name}`, async () => {
          const got = await complete(shell, file, `ctre ${c.name} -`);
          const want = flagsOf(c.options);
          // zsh and fish leave out a non-repeatable flag already given; none is given here.
          assert.deepEqual(got.filter((f) => f.startsWith("-")), sorted(want));
        });
      }
      await t.step("a closed set: the shell of ctre completion", async () => {
        assert.deepEqual(await complete(shell, file, "ctre completion "), ["bash", "fish", "zsh"]);
        assert.deepEqual(await complete(shell, file, "ctre completion z"), ["zsh"]);
        const after = await complete(shell, file, "ctre completion bash ");
        assert.deepEqual(after.filter((w) => !w.startsWith("-")), []);
      });
      await t.step("a value with no closed set offers nothing", async () => {
        assert.deepEqual(await complete(shell, file, "ctre prune --min-age "), []);
        assert.deepEqual(await complete(shell, file, "ctre prune --keep-latest "), []);
      });
      await t.step("a directory option offers directories only", async () => {
        const dir = await Deno.makeTempDir({ prefix: "ctre-compl-" });
        await Deno.mkdir(`${dir}/sub`);
        await Deno.writeTextFile(`${dir}/file`, "");
        const got = await complete(shell, file, `ctre status --state-dir ${dir}/`);
        assert.deepEqual(got.map((g) => g.replace(/\/$/, "")), [`${dir}/sub`]);
        await Deno.remove(dir, { recursive: true });
      });
      await t.step("a file option offers files", async () => {
        const dir = await Deno.makeTempDir({ prefix: "ctre-compl-" });
        await Deno.writeTextFile(`${dir}/keep.txt`, "");
        const got = await complete(shell, file, `ctre prune --keep-file ${dir}/k`);
        assert.deepEqual(got, [`${dir}/keep.txt`]);
        await Deno.remove(dir, { recursive: true });
      });
    },
  });
}

Deno.test({
  name: "completion: --namespace offers the namespaces of a real containerd (-a given)",
  ignore: SHELLS.every((s) => MISSING[s]), // no shell at all: nothing to complete with
  fn: () =>
    withContainerd(async (c) => {
      for (const ns of ["alpha", "k8s.io", "moby"]) await c.ctrOk(["namespace", "create", ns]);
      const want = sorted((await c.ctrOk(["namespace", "ls", "-q"])).split("\n").filter(Boolean));
      assert.ok(want.includes("alpha") && want.includes("k8s.io"), want.join(","));
      for (const shell of SHELLS.filter((s) => !MISSING[s])) {
        const file = await scriptFile(shell);
        for (
          const line of [
            `ctre prune -a ${c.address} -n `,
            `ctre prune --address ${c.address} --namespace `,
          ]
        ) {
          assert.deepEqual(await complete(shell, file, line), want, `${shell}: ${line}`);
        }
        assert.deepEqual(
          await complete(shell, file, `ctre prune -a ${c.address} -n al`),
          ["alpha"],
          shell,
        );
      }
    }),
});

Deno.test("completion: a missing or unknown shell is a usage error", async () => {
  const stateDir = await tempStateDir();
  const none = await runCtre(["completion"], { stateDir });
  assert.equal(none.code, 2);
  assert.match(none.stderr, /^ctre: "ctre completion" needs a shell: bash, zsh, fish\n/);
  const bad = await runCtre(["completion", "tcsh"], { stateDir });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^ctre: Unknown shell "tcsh" \(bash, zsh, fish\)\n/);
});
