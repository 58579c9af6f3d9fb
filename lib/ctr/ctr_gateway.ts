/**
 * The {@linkcode Containerd} gateway over `ctr` (lib/ctr/runner.ts): each method is one ctr
 * command line and the parser of what it prints (lib/ctr/listings.ts, snapshot_usage.ts,
 * image_removal.ts, events.ts). Shapes of every ctr version from 1.6 to 2.x: shared docs
 * ctr-output.md and the captured fixtures in tests/testdata/ctr-*.
 *
 * @module
 */
import { type Ctr, ctrOk, type CtrStream } from "./runner.ts";
import {
  parseContainerInfo,
  parseContainerLs,
  parseContentLs,
  parseDigests,
  parseImageLs,
  parseLeaseIds,
  parseNamespaces,
  parseSnapshotLs,
  parseTaskLs,
} from "./listings.ts";
import { parseSnapshotUsage } from "./snapshot_usage.ts";
import { readRemoval } from "./image_removal.ts";
import { readEventLine } from "./events.ts";
import type {
  Containerd,
  ContainerdChanges,
  ContainerdDaemon,
  ContainerdListings,
  EventStream,
  OtherAddress,
} from "./gateway.ts";

/**
 * The `ctr image ls` filters that list exactly `refs` (several are OR'ed). Quoted, so a ref
 * with `@sha256:…` or other filter syntax is taken literally.
 */
export function nameFilters(refs: string[]): string[] {
  return refs.map((ref) => `name==${JSON.stringify(ref)}`);
}

/** The listings, each one ctr process. */
function listingsOver(ctr: Ctr): ContainerdListings {
  const inNs = (ns: string, args: string[]) => ctrOk(ctr, ["-n", ns, ...args]);
  return {
    namespaces: async () => parseNamespaces(await ctrOk(ctr, ["namespace", "ls", "-q"])),
    listImages: async (ns, refs) =>
      refs?.length === 0
        ? []
        : parseImageLs(await inNs(ns, ["image", "ls", ...nameFilters(refs ?? [])])),
    listContent: async (ns) => parseContentLs(await inNs(ns, ["content", "ls"])),
    contentDigests: async (ns) => parseDigests(await inNs(ns, ["content", "ls", "-q"])),
    listContainers: async (ns, withLabel) =>
      parseContainerLs(
        await inNs(ns, ["container", "ls", ...(withLabel ? [`labels."${withLabel}"`] : [])]),
      ),
    listTasks: async (ns) => parseTaskLs(await inNs(ns, ["task", "ls"])),
    containerInfo: async (ns, id) => parseContainerInfo(await inNs(ns, ["containers", "info", id])),
    listSnapshots: async (ns, snapshotter) =>
      parseSnapshotLs(
        await inNs(ns, ["snapshot", ...(snapshotter ? ["--snapshotter", snapshotter] : []), "ls"]),
      ),
    // -b: bytes (without it SIZE is rounded to one decimal of a binary unit). Flags before the
    // subcommand's arguments: ctr 2.x stops reading flags at the first argument.
    snapshotUsage: async (ns, snapshotter) =>
      parseSnapshotUsage(
        await inNs(ns, [
          "snapshot",
          ...(snapshotter ? ["--snapshotter", snapshotter] : []),
          "usage",
          "-b",
        ]),
      ),
    listLeases: async (ns) => parseLeaseIds(await inNs(ns, ["leases", "ls"])),
    getContent: (ns, digest) => inNs(ns, ["content", "get", digest]),
  };
}

/** The changes, each one ctr process. */
function changesOver(ctr: Ctr): ContainerdChanges {
  const inNs = (ns: string, args: string[]) => ctrOk(ctr, ["-n", ns, ...args]);
  return {
    async removeImages(ns, refs, sync) {
      // --sync waits for garbage collection (after the last ref), so a re-measure sees it.
      const args = ["-n", ns, "image", "rm", ...(sync ? ["--sync"] : []), ...refs];
      return readRemoval(refs, await ctr.run(args), args);
    },
    async removeContainers(ns, ids) {
      const r = await ctr.run(["-n", ns, "containers", "rm", ...ids]);
      return r.stderr.split("\n");
    },
    async clearContentLabels(ns, digest, labels) {
      await inNs(ns, ["content", "label", digest, ...labels.map((l) => `${l}=`)]);
    },
    async labelImage(ns, ref, key, value) {
      await inNs(ns, ["image", "label", ref, `${key}=${value}`]);
    },
    createLease: async (ns, expires) =>
      (await inNs(ns, ["leases", "create", "--expires", expires])).trim(),
    async deleteLease(ns, id, sync) {
      await inNs(ns, ["leases", "delete", ...(sync ? ["--sync"] : []), id]);
    },
  };
}

/** The server's version in `ctr version` output, if it answered. */
function serverVersionIn(stdout: string): string | undefined {
  return /Server:[\s\S]*?Version:\s*(\S+)/.exec(stdout)?.[1];
}

/** A ctr event stream, one parsed line each. */
function eventsOf(s: CtrStream, wantPayload?: (topic: string) => boolean): EventStream {
  return {
    events: (async function* () {
      for await (const line of s.lines) yield readEventLine(line, wantPayload);
    })(),
    done: s.done,
    stop: () => s.stop(),
  };
}

/** Versions and events. */
function daemonOver(ctr: Ctr): ContainerdDaemon {
  return {
    clientVersion: async () => (await ctrOk(ctr, ["--version"])).trim(),
    async serverVersion(other?: OtherAddress) {
      const at = other === undefined
        ? []
        : ["--address", other.address, "--connect-timeout", other.connectTimeout];
      return serverVersionIn(await ctrOk(ctr, [...at, "version"]));
    },
    events: (wantPayload?: (topic: string) => boolean) =>
      eventsOf(ctr.stream(["event"]), wantPayload),
    imageEvents: (ns: string) =>
      eventsOf(ctr.stream(["events", `namespace==${ns},topic~="^/images/"`])),
  };
}

/** The gateway over `ctr`: every call is one ctr process of `ctr` (which counts them). */
export function ctrGateway(ctr: Ctr): Containerd {
  return { ...listingsOver(ctr), ...changesOver(ctr), ...daemonOver(ctr) };
}
