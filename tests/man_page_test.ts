/**
 * `ctre man`: the roff it prints renders without a warning through groff and man-db, as an
 * operator's `man -l` would, and says everything the tables hold: every command, every listed
 * flag with its value name, every keep reason, every exit code.
 */
import assert from "node:assert/strict";
import { COMMAND_SPECS, EXIT_CODES, TOP_OPTIONS } from "../lib/cli/cli.ts";
import type { OptionTable } from "../lib/cli/options.ts";
import { KEEP_REASONS } from "../lib/policy/reasons.ts";
import { roff } from "../lib/cli/man_page.ts";
import { runCtre, tempStateDir } from "./support/cli.ts";

async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const r = await new Deno.Command(cmd, { args, env, stdin: "null" }).output();
  const d = new TextDecoder();
  return { code: r.code, stdout: d.decode(r.stdout), stderr: d.decode(r.stderr) };
}

/** The page `ctre man` prints, in a temp file. */
async function pageFile(): Promise<string> {
  const stateDir = await tempStateDir();
  const r = await runCtre(["man"], { stateDir });
  assert.deepEqual([r.code, r.stderr], [0, ""]);
  const file = `${stateDir}/ctre.1`;
  await Deno.writeTextFile(file, r.stdout);
  return file;
}

function flagsOf(table: OptionTable): string[] {
  return Object.entries(table).filter(([, o]) => !o.hidden).map(([name, o]) =>
    `${o.short ? `-${o.short}, ` : ""}--${name}${o.arg ? ` ${o.arg}` : ""}`
  );
}

Deno.test("ctre man renders without warnings (groff -ww, man --warnings -l)", async () => {
  const file = await pageFile();
  const groff = await run("groff", ["-man", "-ww", "-z", file]);
  assert.deepEqual([groff.code, groff.stderr], [0, ""]);
  const man = await run("man", ["--warnings", "-l", file], {
    MANWIDTH: "80",
    PATH: "/usr/bin:/bin",
  });
  assert.deepEqual([man.code, man.stderr], [0, ""]);
  assert.match(man.stdout, /^CTRE\(1\) +User Commands +CTRE\(1\)$/m);
});

Deno.test("ctre man holds every command, flag, keep reason and exit code", async () => {
  const file = await pageFile();
  const man = await run("man", ["-l", file], { MANWIDTH: "80", PATH: "/usr/bin:/bin" });
  assert.equal(man.code, 0, man.stderr);
  // One line of text: hyphenation undone, spaces collapsed.
  const text = man.stdout.replace(/\u2010\s*\n\s*/g, "").replace(/\s+/g, " ");
  for (const f of flagsOf(TOP_OPTIONS)) assert.ok(text.includes(` ${f} `), f);
  for (const c of COMMAND_SPECS) {
    assert.ok(text.includes(`ctre ${c.name}${c.arg ? ` ${c.arg.name}` : ""} [options]`), c.name);
    for (const f of flagsOf(c.options)) assert.ok(text.includes(` ${f} `), `${c.name} ${f}`);
  }
  const decisions = text.slice(text.indexOf(" DECISIONS "), text.indexOf(" EXIT STATUS ") + 1);
  for (const reason of Object.keys(KEEP_REASONS)) {
    assert.ok(decisions.includes(` ${reason} `), reason);
  }
  const exit = text.slice(text.indexOf(" EXIT STATUS "), text.indexOf(" FILES ") + 1);
  for (const [code, meaning] of EXIT_CODES) {
    assert.ok(exit.includes(` ${code} ${meaning} `), meaning);
  }
});

Deno.test("roff() escapes backslashes, hyphens and leading control characters", () => {
  assert.equal(roff("a-b \\n"), "a\\-b \\en");
  assert.equal(roff(".TH x\n'quote"), "\\&.TH x\n\\&'quote");
});
