/**
 * ctre's entry point: parse the command line, build the real ctr runner and stdio, run the
 * command, map its outcome to an exit code. The only place that exits.
 *
 * Permissions (lib/cli/permissions.ts): --allow-run=ctr, read and write under the state dir.
 *
 * @module
 */
import { parseCommand } from "./lib/cli/cli.ts";
import { systemCtr } from "./lib/ctr/runner.ts";
import { errorText, UsageError } from "./lib/core/errors.ts";
import { println, processIo } from "./lib/core/io.ts";
import { VERSION } from "./lib/core/version.ts";

// Each command's modules are loaded when it runs (literal specifiers, so `deno compile` still
// embeds them): a start loads only what that command needs.

async function run(argv: string[]): Promise<number> {
  const io = processIo();
  const cmd = parseCommand(argv);
  switch (cmd.kind) {
    case "help":
      println(io.stdout, cmd.text);
      return 0;
    case "version":
      println(io.stdout, `ctre ${VERSION}`);
      return 0;
    case "prune": {
      const [{ join }, { readKeepFile }, { prune }] = await Promise.all([
        import("node:path"),
        import("./lib/state/keep_file.ts"),
        import("./lib/prune/prune.ts"),
      ]);
      const opts = cmd.prune;
      // The keep files are read for every run: a repeating pruner sees their edits.
      const once = async () => {
        const keep = [
          ...opts.keep,
          ...await readKeepFile(join(opts.stateDir, "keep"), true),
          ...(cmd.keepFile === undefined ? [] : await readKeepFile(cmd.keepFile, false)),
        ];
        return await prune(systemCtr(cmd.address), { ...opts, keep }, io);
      };
      if (cmd.schedule === null) return await once();
      const { abortableSleep, repeat } = await import("./lib/prune/schedule.ts");
      const schedule = cmd.schedule;
      return await untilSignal((stop) =>
        repeat(once, schedule, {
          sleep: abortableSleep,
          random: Math.random,
          now: io.now,
          log: (line) => println(io.stderr, line),
        }, stop)
      );
    }
    case "doctor": {
      const { diagnose, reportChecks } = await import("./lib/ops/doctor.ts");
      return reportChecks(
        await diagnose(systemCtr(cmd.address), cmd.stateDir, cmd.address, io.now()),
        cmd.json,
        io,
      );
    }
    case "status": {
      const { status } = await import("./lib/ops/status.ts");
      return await status(cmd.stateDir, cmd.json, io);
    }
    case "record": {
      const { record } = await import("./lib/recorder/recorder.ts");
      const stop = new AbortController();
      const signals = ["SIGTERM", "SIGINT"] as const;
      const onSignal = () => stop.abort();
      for (const s of signals) Deno.addSignalListener(s, onSignal);
      try {
        return await record(systemCtr(cmd.address), cmd.record, { ...io, signal: stop.signal });
      } finally {
        for (const s of signals) Deno.removeSignalListener(s, onSignal);
      }
    }
  }
}

/**
 * Runs `work` with a signal that SIGTERM or SIGINT aborts instead of killing the process (as the
 * recorder's case above does).
 */
async function untilSignal(work: (stop: AbortSignal) => Promise<number>): Promise<number> {
  const stop = new AbortController();
  const signals = ["SIGTERM", "SIGINT"] as const;
  const onSignal = () => stop.abort();
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  try {
    return await work(stop.signal);
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
  }
}

async function main(): Promise<never> {
  let code: number;
  try {
    code = await run(Deno.args);
  } catch (e) {
    const err = processIo().stderr;
    // One short line whatever was thrown: never a stack, never a megabyte of echoed input.
    const text = errorText(e);
    println(err, `ctre: ${text.length > 500 ? `${text.slice(0, 500)}… (cut)` : text}`);
    if (e instanceof UsageError) println(err, `Run "ctre --help" for usage.`);
    code = e instanceof UsageError ? 2 : 1;
  }
  Deno.exit(code);
}

if (import.meta.main) main();
