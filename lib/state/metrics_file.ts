/**
 * Prometheus text-format metrics for node_exporter's textfile collector, written atomically to
 * `<state-dir>/metrics/ctre.prom` (dir 0755, file 0644, so that node_exporter can read it as an
 * unprivileged user). prune owns the `ctre_prune_*` families and the recorder the
 * `ctre_recorder_*` ones; each rewrites only its own, under a lock, so both fit in one file.
 *
 * @module
 */
import { join } from "node:path";
import { permissionHint, writeAtomic } from "./state_files.ts";

export interface Sample {
  labels?: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  help: string;
  type: "gauge" | "counter";
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** The text exposition format of `families`. */
export function formatMetrics(families: Family[]): string {
  let out = "";
  for (const f of families) {
    if (!NAME.test(f.name)) throw new Error(`Invalid metric name "${f.name}"`);
    out += `# HELP ${f.name} ${f.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n`;
    out += `# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) {
      const labels = Object.entries(s.labels ?? {});
      for (const [k] of labels) if (!LABEL.test(k)) throw new Error(`Invalid label name "${k}"`);
      const l = labels.length
        ? `{${labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`
        : "";
      out += `${f.name}${l} ${formatValue(s.value)}\n`;
    }
  }
  return out;
}

/** Splits an existing file into blocks per family name (HELP/TYPE/samples kept together). */
function blocks(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let current = "";
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const m = /^# (?:HELP|TYPE) (\S+)/.exec(line) ?? /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (m?.[1]) current = m[1];
    out.set(current, `${out.get(current) ?? ""}${line}\n`);
  }
  return out;
}

/**
 * Replaces the families whose names start with `prefix` in `<stateDir>/metrics/ctre.prom` by
 * `families`, keeping the others. Needs read and write access to the state dir.
 */
export async function writeMetrics(
  stateDir: string,
  prefix: string,
  families: Family[],
): Promise<void> {
  const dir = join(stateDir, "metrics");
  const path = join(dir, "ctre.prom");
  let lock: Deno.FsFile;
  try {
    await Deno.mkdir(dir, { recursive: true });
    // node_exporter runs as an unprivileged user: the metrics dir and file are world-readable
    // (the state dir above is only traversable, 0711), the lock is not (who can open it can
    // hold it).
    await Deno.chmod(dir, 0o755);
    lock = await Deno.open(join(dir, ".lock"), { write: true, create: true, mode: 0o600 });
  } catch (e) {
    throw permissionHint(e, path, "write");
  }
  try {
    await lock.lock(true);
    const old = await Deno.readTextFile(path).catch(() => "");
    const kept = [...blocks(old)].filter(([name]) => !name.startsWith(prefix)).map(([, b]) => b);
    await writeAtomic(path, kept.join("") + formatMetrics(families), 0o644);
  } finally {
    lock.close();
  }
}
