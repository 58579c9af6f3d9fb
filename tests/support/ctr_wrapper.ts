/**
 * A stand-in `ctr` for end-to-end tests of what `ctr image rm` can meet on a live node: a shell
 * script named `ctr`, first on the PATH of the CLI process (Deno's `--allow-run=ctr` resolves
 * `ctr` on PATH), that tampers with `image rm` calls and otherwise execs the real ctr:
 *
 * - `steal`: before the real `image rm` runs, removes one ref itself with the real ctr, as
 *   another operator or kubelet's image GC would.
 * - `repoint`: on the first `image ls` with a `name==` filter (prune's last-second re-read of a
 *   batch), first re-points one ref to another image (`image tag --force`), as a pull of
 *   `:latest` would between the plan and the removal.
 * - `fail`: takes one ref out of the `image rm` arguments, runs the real ctr with the rest, then
 *   reports that ref the way ctr 1.6 does when a delete fails (a logrus error line and
 *   `ctr: unable to delete <ref>: <error>`) and exits 1.
 *
 * Every call is appended to `<dir>/calls.log`.
 *
 * @module
 */
import { join } from "node:path";
import { type CliOptions, type CliResult, ctreArgs } from "./cli.ts";

export interface WrapperOptions {
  /** Socket of the test containerd (for the wrapper's own `image rm` when stealing). */
  address: string;
  /** Remove this ref of this namespace just before the real `image rm` runs. */
  steal?: { ns: string; ref: string };
  /** Re-point `ref` of `ns` to the target of `to` right before the re-read of its batch. */
  repoint?: { ns: string; ref: string; to: string };
  /** Make `image rm` fail for this ref with this error text. */
  fail?: { ref: string; error: string };
}

export interface CtrWrapper {
  /** The dir holding the `ctr` script: put it first on PATH. */
  dir: string;
  /** The argument vectors the wrapper was called with, one line each. */
  calls(): Promise<string[]>;
  cleanup(): Promise<void>;
}

/** Quotes `s` for sh. */
function sq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The real ctr: the first executable `ctr` on this process's PATH. */
export async function realCtr(): Promise<string> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir === "") continue;
    const path = join(dir, "ctr");
    try {
      const st = await Deno.stat(path);
      if (st.isFile && (st.mode ?? 0) & 0o111) return path;
    } catch {
      // not here
    }
  }
  throw new Error("ctr is not on PATH");
}

/** Writes the wrapper script into a new temp dir. */
export async function ctrWrapper(opts: WrapperOptions): Promise<CtrWrapper> {
  const real = await realCtr();
  const dir = await Deno.makeTempDir({ prefix: "ctre-ctr-wrapper-" });
  const log = join(dir, "calls.log");
  const lines = [
    "#!/bin/sh",
    "# Written by tests/support/ctr_wrapper.ts.",
    `real=${sq(real)}`,
    `printf '%s\\n' "$*" >>${sq(log)}`,
    'case " $* " in',
    '*" image rm "*)',
  ];
  if (opts.steal) {
    const { ns, ref } = opts.steal;
    lines.push(
      `  "$real" --address ${sq(opts.address)} -n ${sq(ns)} image rm ${sq(ref)} >/dev/null 2>&1`,
    );
  }
  if (opts.fail) {
    const { ref, error } = opts.fail;
    const logLine = `time="2026-01-01T00:00:00Z" level=error msg="unable to delete ${ref}" ` +
      `error="${error}"`;
    lines.push(
      "  found=0",
      "  for a do",
      "    shift",
      `    if [ "$a" = ${sq(ref)} ]; then found=1; else set -- "$@" "$a"; fi`,
      "  done",
      '  if [ "$found" = 1 ]; then',
      '    "$real" "$@"',
      `    printf '%s\\n' ${sq(logLine)} >&2`,
      `    printf '%s\\n' ${sq(`ctr: unable to delete ${ref}: ${error}`)} >&2`,
      "    exit 1",
      "  fi",
    );
  }
  lines.push("  ;;");
  if (opts.repoint) {
    const { ns, ref, to } = opts.repoint;
    const done = join(dir, "repointed");
    lines.push(
      '*" image ls name=="*)',
      `  if [ ! -e ${sq(done)} ]; then`,
      `    : >${sq(done)}`,
      `    "$real" --address ${sq(opts.address)} -n ${sq(ns)} image tag --force ${sq(to)} ${
        sq(ref)
      } >/dev/null 2>&1`,
      "  fi",
      "  ;;",
    );
  }
  lines.push("esac", 'exec "$real" "$@"', "");
  const script = join(dir, "ctr");
  await Deno.writeTextFile(script, lines.join("\n"), { mode: 0o755 });
  await Deno.chmod(script, 0o755);
  return {
    dir,
    async calls() {
      const text = await Deno.readTextFile(log).catch(() => "");
      return text.split("\n").filter((l) => l !== "");
    },
    async cleanup() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * Runs ctre like runCtre (shipped permissions, its own state dir, stdin /dev/null) with
 * `wrapperDir` first on PATH, so its `ctr` is the wrapper.
 */
export async function runCtreWrapped(
  args: string[],
  opts: CliOptions,
  wrapperDir: string,
): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ctreArgs(args, opts),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", PATH: `${wrapperDir}:${Deno.env.get("PATH") ?? ""}` },
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}
