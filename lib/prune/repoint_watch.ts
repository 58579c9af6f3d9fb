/**
 * Catches the one race a removal by name cannot close. `ctr image rm REF` deletes whatever REF
 * names when containerd gets to it; ctre re-reads each ref right before (removal.ts), but a pull,
 * import or `ctr image tag --force` that moves REF between that re-read and the deletion makes
 * ctr delete the NEW image's record, and ctr reports it as deleted like any other (the churn
 * soak lost freshly imported images this way; containerd 1.6 to 2.x offer ctr no delete that
 * checks the target).
 *
 * So while a chunk is removed, ctre follows the namespace's image events: one probe event of its
 * own (a label on a planned ref) shows the subscription is live before the re-read; a ref whose
 * create or update event has arrived by the time `ctr image rm` is started is kept as moved (the
 * window shrinks to ctr's start-up); afterwards a
 * `/images/create` or `/images/update` of a removed ref that came after the probe and before that
 * ref's `/images/delete` means the record deleted was the re-pointed one. Such refs are reported,
 * so prune says so and exits 1 instead of logging an intended removal.
 *
 * @module
 */
import type { Containerd, EventStream } from "../ctr/gateway.ts";

/** The label of the probe event (its value is unique per watch). */
export const PROBE_LABEL = "ctre.io/removing";
/**
 * How long to wait for the probe, and for the deletions, to show in the event stream: normally
 * milliseconds; long enough for a node under heavy load (events took over 5 s on a test machine
 * with a load of 12 on 2 cores).
 */
const WAIT_MS = 15_000;
/** Refs tried for the probe label before watching is given up. */
const PROBE_TRIES = 3;
/** How long one probe label may take to show before the next is set. */
const PROBE_EVERY_MS = 500;

/** Image events of one namespace, in stream order: topic and image name. */
interface Seen {
  topic: string;
  name: string;
}

/** Follows one namespace's image events while one chunk of refs is removed (see above). */
export class RepointWatch {
  readonly #seen: Seen[] = [];
  #ended = false;
  #wake: (() => void) | null = null;

  /** The ref whose label change is the probe, once one was labelled. */
  probed: string | null = null;

  private constructor(readonly stream: EventStream) {
    (async () => {
      try {
        for await (const e of stream.events) {
          // A line that is not an image event: nothing to learn.
          if (!(e instanceof Error)) {
            this.#seen.push({ topic: e.topic, name: String(e.payload.name ?? "") });
          }
          this.#wake?.();
        }
      } finally {
        this.#ended = true;
        this.#wake?.();
      }
    })();
  }

  /**
   * Starts following the image events of `ns` and waits until its own probe (a label on the
   * first of `refs` that still exists) shows. null when no probe could be seen: nothing to watch
   * (every ref gone) or no events (then the removal goes on unwatched, as before).
   */
  static async start(
    containerd: Containerd,
    ns: string,
    refs: string[],
  ): Promise<RepointWatch | null> {
    const stream = containerd.imageEvents(ns);
    const watch = new RepointWatch(stream);
    // Whether the label was set: a ref removed meanwhile cannot be labelled.
    const label = (ref: string, value: string) =>
      containerd.labelImage(ns, ref, PROBE_LABEL, value).then(() => true, () => false);
    for (const ref of refs.slice(0, PROBE_TRIES)) {
      if (!(await label(ref, "1"))) continue;
      watch.probed = ref;
      // ctr events may subscribe after the label: label again (a new value, a new event) until
      // one shows, for at most WAIT_MS.
      const deadline = Date.now() + WAIT_MS;
      for (let n = 2; Date.now() < deadline && !watch.#ended; n++) {
        if (await watch.#until(() => watch.#probeAt() >= 0, PROBE_EVERY_MS)) return watch;
        await label(ref, String(n));
      }
      // No events: the label must not stay behind on an image that may be kept.
      await label(ref, "");
      break;
    }
    stream.stop();
    return null;
  }

  /** Where the probe shows in the stream (-1: not yet). */
  #probeAt(): number {
    return this.#seen.findIndex((s) => s.topic === "/images/update" && s.name === this.probed);
  }

  /** Waits until `ok()` or `ms`; whether it held. */
  async #until(ok: () => boolean, ms = WAIT_MS): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!ok()) {
      if (this.#ended || Date.now() > deadline) return ok();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.#wake = resolve),
        new Promise<void>((resolve) => timer = setTimeout(resolve, 50)),
      ]);
      clearTimeout(timer);
    }
    return true;
  }

  /** Refs created or updated since the probe (so far): moved, whatever the re-read said. */
  touched(): Set<string> {
    const start = this.#probeAt() + 1;
    return new Set(
      this.#seen.slice(start).filter((s) =>
        s.topic === "/images/create" || s.topic === "/images/update"
      ).map((s) => s.name),
    );
  }

  /**
   * After the removal: waits for the deletion events of `removed`, stops following, and returns
   * the refs that were re-pointed between the probe and their deletion.
   */
  async finish(removed: string[]): Promise<string[]> {
    const deleted = (ref: string) =>
      this.#seen.some((s) => s.topic === "/images/delete" && s.name === ref);
    await this.#until(() => removed.every(deleted));
    this.stream.stop();
    const start = this.#probeAt() + 1;
    return removed.filter((ref) => {
      const end = this.#seen.findIndex((s, i) =>
        i >= start && s.topic === "/images/delete" && s.name === ref
      );
      const window = this.#seen.slice(start, end < 0 ? undefined : end);
      return window.some((s) =>
        s.name === ref && (s.topic === "/images/create" || s.topic === "/images/update")
      );
    });
  }
}
