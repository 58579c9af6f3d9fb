/**
 * `ctre doctor`: what an operator auditing a node needs to know — the permissions this ctre
 * holds and does not hold, which ctr it runs, whether containerd answers and whether upstream
 * still supports its version (lib/ctr/containerd_support.ts), whether the state dir is writable, and
 * whether the recorder is alive. Exit 1 when something prune needs is missing.
 *
 * @module
 */
import { join } from "node:path";
import { containerdSupport } from "../ctr/containerd_support.ts";
import type { Containerd } from "../ctr/gateway.ts";
import { CtrExitError, errorText, lastStderrLine } from "../core/errors.ts";
import { type Io, println } from "../core/io.ts";
import { lockHolder } from "../state/lock.ts";
import { parseUsageDb, USAGE_FILE } from "../state/usage_db.ts";

/** The version of the doctor --json document's shape (schemas/doctor.schema.json). */
export const DOCTOR_SCHEMA_VERSION = 1;

export type Status = "ok" | "warn" | "fail" | "info";

export interface Check {
  name: string;
  status: Status;
  detail: string;
}

/** The permissions ctre needs (must be granted) and some it must not have (reported). */
function permissionQueries(
  stateDir: string,
): { desc: Deno.PermissionDescriptor; needed: boolean; text: string }[] {
  return [
    { desc: { name: "run", command: "ctr" }, needed: true, text: "run ctr" },
    { desc: { name: "read", path: stateDir }, needed: true, text: `read ${stateDir}` },
    { desc: { name: "write", path: stateDir }, needed: true, text: `write ${stateDir}` },
    { desc: { name: "run" }, needed: false, text: "run any other program" },
    { desc: { name: "read" }, needed: false, text: "read anywhere else" },
    { desc: { name: "write" }, needed: false, text: "write anywhere else" },
    { desc: { name: "net" }, needed: false, text: "network" },
    { desc: { name: "env" }, needed: false, text: "environment variables" },
    { desc: { name: "sys" }, needed: false, text: "system information" },
    { desc: { name: "ffi" }, needed: false, text: "native libraries (ffi)" },
  ];
}

async function permissions(stateDir: string): Promise<Check[]> {
  const held: string[] = [];
  const notHeld: string[] = [];
  const missing: string[] = [];
  for (const q of permissionQueries(stateDir)) {
    const granted = (await Deno.permissions.query(q.desc)).state === "granted";
    (granted ? held : notHeld).push(q.text);
    if (q.needed && !granted) missing.push(q.text);
  }
  return [
    {
      name: "permissions held",
      status: missing.length ? "fail" : "ok",
      detail: held.join(", ") || "none",
    },
    {
      name: "permissions not held",
      status: missing.length ? "fail" : "info",
      detail: notHeld.join(", ") + (missing.length ? ` (prune needs: ${missing.join(", ")})` : ""),
    },
  ];
}

/** Which ctr runs and whether containerd answers, with its version and upstream support. */
async function ctrChecks(
  containerd: Containerd,
  address: string | undefined,
  now: number,
): Promise<Check[]> {
  let ctr: Check;
  try {
    const version = await containerd.clientVersion();
    ctr = { name: "ctr", status: "ok", detail: `ctr from PATH: ${version}` };
  } catch (e) {
    if (!(e instanceof CtrExitError)) {
      return [{ name: "ctr", status: "fail", detail: errorText(e) }];
    }
    ctr = { name: "ctr", status: "fail", detail: e.stderr.trim() };
  }
  const where = address ?? "ctr's default socket (or CONTAINERD_ADDRESS)";
  let server: string | undefined;
  try {
    server = await containerd.serverVersion();
  } catch (e) {
    if (!(e instanceof CtrExitError)) throw e;
    const detail = `does not answer at ${where}: ${lastStderrLine(e.stderr)}`;
    return [ctr, { name: "containerd", status: "fail", detail }];
  }
  const checks: Check[] = [ctr, {
    name: "containerd",
    status: "ok",
    detail: `answers at ${where}, version ${server ?? "unknown"}`,
  }];
  if (server !== undefined) {
    checks.push({ name: "containerd support", ...containerdSupport(server, now) });
  }
  return checks;
}

async function stateChecks(stateDir: string, now: number): Promise<Check[]> {
  const checks: Check[] = [];
  const probe = join(stateDir, `.doctor-${Deno.pid}`);
  try {
    await Deno.mkdir(stateDir, { recursive: true });
    await Deno.writeTextFile(probe, "");
    await Deno.remove(probe);
    checks.push({ name: "state dir", status: "ok", detail: `${stateDir} is writable` });
  } catch (e) {
    checks.push({
      name: "state dir",
      status: "fail",
      detail: `${stateDir} is not writable: ${errorText(e)}`,
    });
  }
  const db = join(stateDir, USAGE_FILE);
  try {
    const [stat, text] = await Promise.all([Deno.stat(db), Deno.readTextFile(db)]);
    const parsed = parseUsageDb(text);
    const age = stat.mtime ? Math.round(now - stat.mtime.getTime() / 1000) : null;
    checks.push({
      name: "usage DB",
      status: parsed.rejected.length ? "warn" : "ok",
      detail:
        `${db}: ${parsed.entries.size} entries, ${parsed.rejected.length} corrupt lines, last written ` +
        (age === null ? "at an unknown time" : `${stat.mtime?.toISOString()} (${age} s ago)`),
    });
  } catch (e) {
    const missing = e instanceof Deno.errors.NotFound;
    checks.push({
      name: "usage DB",
      status: missing ? "warn" : "fail",
      detail: missing ? `${db} does not exist yet (no start recorded)` : errorText(e),
    });
  }
  checks.push(await recorderCheck(stateDir));
  return checks;
}

/** Whether a recorder holds its lock on this state dir: if we can take it, none runs. */
export async function recorderCheck(stateDir: string): Promise<Check> {
  let holder: string | null;
  try {
    holder = await lockHolder(stateDir, "record-image-starts");
  } catch (e) {
    return { name: "recorder", status: "warn", detail: `cannot check: ${errorText(e)}` };
  }
  return holder === null
    ? {
      name: "recorder",
      status: "warn",
      detail: "ctre record-image-starts is NOT running on this state dir: " +
        "prune cannot see which images were started recently",
    }
    : { name: "recorder", status: "ok", detail: `running (${holder})` };
}

/** The socket of k3s's and RKE2's embedded containerd. */
export const K3S_SOCKET = "/run/k3s/containerd/containerd.sock";

/**
 * When containerd does not answer at ctr's default socket: whether k3s's or RKE2's does, asked
 * through ctr (ctre may not read outside its state dir, so it never looks at the path itself).
 * Says which flag to use.
 */
export async function k3sSocketCheck(containerd: Containerd): Promise<Check> {
  const name = "k3s/RKE2 socket";
  let server: string | undefined;
  try {
    server = await containerd.serverVersion({ address: K3S_SOCKET, connectTimeout: "2s" });
  } catch (e) {
    if (e instanceof CtrExitError) {
      return { name, status: "info", detail: `no containerd answers at ${K3S_SOCKET} either` };
    }
    return { name, status: "info", detail: `cannot ask ${K3S_SOCKET}: ${errorText(e)}` };
  }
  return {
    name,
    status: "warn",
    detail:
      `containerd${
        server ? ` ${server}` : ""
      } answers at ${K3S_SOCKET} (k3s or RKE2): run ctre with ` +
      `--address ${K3S_SOCKET} (e.g. CTRE_ARGS="--address ${K3S_SOCKET}" in /etc/default/ctre)`,
  };
}

/** Runs every check. */
export async function diagnose(
  containerd: Containerd,
  stateDir: string,
  address: string | undefined,
  now: number,
): Promise<Check[]> {
  const reached = await ctrChecks(containerd, address, now);
  const unreachable = reached.some((c) => c.name === "containerd" && c.status === "fail");
  return [
    ...await permissions(stateDir),
    ...reached,
    ...(address === undefined && unreachable ? [await k3sSocketCheck(containerd)] : []),
    ...await stateChecks(stateDir, now),
  ];
}

/** Prints the checks (table or JSON) and returns the exit code. */
export function reportChecks(checks: Check[], json: boolean, io: Io): number {
  const failed = checks.some((c) => c.status === "fail");
  if (json) {
    const doc = { schemaVersion: DOCTOR_SCHEMA_VERSION, ok: !failed, checks };
    println(io.stdout, JSON.stringify(doc, null, 2));
  } else {
    const width = Math.max(...checks.map((c) => c.name.length));
    for (const c of checks) {
      println(io.stdout, `${c.status.padEnd(4)}  ${c.name.padEnd(width)}  ${c.detail}`);
    }
  }
  return failed ? 1 : 0;
}
