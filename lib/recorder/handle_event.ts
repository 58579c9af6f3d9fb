/**
 * What each containerd event means to the recorder: which use it records (C, T, t, V, v, P)
 * and what it teaches the image cache. The recorder (recorder.ts) owns the logging and the DB.
 *
 * @module
 */
import { type CtrEvent, field, payloadTime } from "../ctr/events.ts";
import type { ImageUse } from "../policy/usage_event.ts";
import type { ImageCache } from "./container_images.ts";

/** What an event handler records into. */
export interface EventSink {
  readonly cache: ImageCache;
  /** Records `mark` for each ref of `refs` (null: a container without image). */
  recordAll(mark: ImageUse["mark"], time: number, ns: string, refs: (string | null)[] | null): void;
  /** Records a pull of image `name`. */
  recordPull(time: number, ns: string, name: string): void;
}

/** The topics {@linkcode handleEvent} reads a payload of; the others it only counts. */
export const READ_TOPICS: ReadonlySet<string> = new Set([
  "/containers/create",
  "/containers/update",
  "/containers/delete",
  "/images/create",
  "/images/update",
  "/snapshot/prepare",
  "/snapshot/commit",
  "/snapshot/remove",
  "/tasks/create",
  "/tasks/exit",
]);

/** Field `name` of the payload, or a throw (the event is then logged and skipped). */
function need(e: CtrEvent, name: string, what: string): string {
  const v = field(e.payload, name);
  if (v === undefined) throw new Error(`no ${what} in payload`);
  return v;
}

async function taskEvent(sink: EventSink, e: CtrEvent): Promise<void> {
  const id = need(e, "container_id", "container_id");
  if (e.topic === "/tasks/create") {
    const refs = await sink.cache.refsOf(e.ns, id, true);
    if (refs !== undefined) sink.recordAll("T", e.time, e.ns, refs);
    return;
  }
  if (field(e.payload, "id") !== id) return; // an exec ended, not the container
  const refs = await sink.cache.refsOf(e.ns, id, false);
  const time = payloadTime(e.payload.exited_at) ?? e.time;
  if (refs !== undefined) sink.recordAll("t", time, e.ns, refs);
}

async function snapshotEvent(sink: EventSink, e: CtrEvent): Promise<void> {
  sink.cache.observe(e);
  const key = field(e.payload, "key");
  if (key === undefined) return;
  // A pod's image volume (containerd 2.1+ CRI): its start is the mount, its end the removal.
  if (e.topic === "/snapshot/prepare") {
    sink.recordAll("V", e.time, e.ns, await sink.cache.volumeMounted(e.ns, key));
  } else if (e.topic === "/snapshot/remove") {
    sink.recordAll("v", e.time, e.ns, sink.cache.volumeRemoved(e.ns, key));
  }
}

/** Handles one parsed event; throws (to be logged and skipped) when its payload lacks a field. */
export async function handleEvent(sink: EventSink, e: CtrEvent): Promise<void> {
  switch (e.topic) {
    case "/containers/create":
    case "/containers/update": {
      need(e, "id", "container id");
      sink.cache.observe(e);
      const image = field(e.payload, "image") || null;
      if (e.topic === "/containers/create") sink.recordAll("C", e.time, e.ns, [image]);
      return;
    }
    case "/images/delete":
      return sink.cache.observe(e);
    case "/images/create":
    case "/images/update": {
      sink.cache.observe(e);
      // A pull (also of a tag whose content is already here) or a re-tag: a use of the ref.
      const name = field(e.payload, "name");
      if (name === undefined || name === "") throw new Error("no image name in payload");
      return sink.recordPull(e.time, e.ns, name);
    }
    case "/snapshot/prepare":
    case "/snapshot/commit":
    case "/snapshot/remove":
      return await snapshotEvent(sink, e);
    case "/containers/delete":
      return sink.cache.observe(e);
    case "/tasks/create":
    case "/tasks/exit":
      return await taskEvent(sink, e);
  }
}
