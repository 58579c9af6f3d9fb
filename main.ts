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
import { ctrGateway } from "./lib/ctr/ctr_gateway.ts";
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
    case "completion": {
      const { completionScript } = await import("./lib/cli/completion.ts");
      io.stdout.write(completionScript(cmd.shell));
      return 0;
    }
    case "man": {
      const { manPage } = await import("./lib/cli/man_page.ts");
      io.stdout.write(manPage());
      return 0;
    }
    case "prune": {
      const { prune } = await import("./lib/prune/prune.ts");
      const opts = cmd.prune;
      // The keep files are read for every run: a repeating pruner sees their edits.
      const once = async () => {
        const keep = await keepPatterns(opts, cmd.keepFile);
        return await prune(ctrGateway(systemCtr(cmd.address)), { ...opts, keep }, io);
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
    case "df": {
      const { df } = await import("./lib/ops/df.ts");
      const p = cmd.df.prune;
      const opts = { ...cmd.df, prune: { ...p, keep: await keepPatterns(p, cmd.keepFile) } };
      return await df(ctrGateway(systemCtr(cmd.address)), opts, cmd.json, io);
    }
    case "doctor": {
      const { diagnose, reportChecks } = await import("./lib/ops/doctor.ts");
      return reportChecks(
        await diagnose(ctrGateway(systemCtr(cmd.address)), cmd.stateDir, cmd.address, io.now()),
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
        return await record(ctrGateway(systemCtr(cmd.address)), cmd.record, {
          ...io,
          signal: stop.signal,
        });
      } finally {
        for (const s of signals) Deno.removeSignalListener(s, onSignal);
      }
    }
  }
}

/** --keep patterns, then <state-dir>/keep's, then --keep-file's. */
async function keepPatterns(
  opts: { keep: string[]; stateDir: string },
  keepFile: string | undefined,
): Promise<string[]> {
  const [{ join }, { readKeepFile }] = await Promise.all([
    import("node:path"),
    import("./lib/state/keep_file.ts"),
  ]);
  return [
    ...opts.keep,
    ...await readKeepFile(join(opts.stateDir, "keep"), true),
    ...(keepFile === undefined ? [] : await readKeepFile(keepFile, false)),
  ];
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
