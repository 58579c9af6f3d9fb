/**
 * The workload of the churn soak (soak.ts): a seeded stream of what happens on a busy node —
 * fresh image imports (by default two in five `--no-unpack`), images nobody uses, re-imports that move a tag to new content, re-tags,
 * containers started, stopped and removed, throw-away `ctr run --rm` — against a private
 * containerd (tests/support/containerd.ts). It remembers what must still be there afterwards:
 * every ref it made and the digest it last pointed it to, and the containers it left.
 *
 * @module
 */
import type { TestContainerd } from "../../tests/support/containerd.ts";
export { prng as rng } from "../../tests/support/random.ts";

/** One workload step, as logged. */
export interface Op {
  /** Milliseconds since the soak started. */
  at: number;
  kind: string;
  detail: string;
  error?: string;
}

export const SOAK_NS = "default";
const REPO = "docker.io/soak";

/** The workload's state: what it made and still expects. */
export class Churn {
  /** ref → digest it was last imported or tagged as. */
  readonly expected = new Map<string, string>();
  /** ref → when (ms since the start) the workload last set it. */
  readonly setAt = new Map<string, number>();
  /** Running containers: id → ref. */
  readonly running = new Map<string, string>();
  readonly ops: Op[] = [];
  #n = 0;

  constructor(
    readonly c: TestContainerd,
    readonly random: () => number,
    readonly started: number,
    /** The share of fresh imports made with `--no-unpack`. */
    readonly noUnpackShare = 0.4,
  ) {}

  #pick<T>(items: T[]): T | undefined {
    return items.length ? items[Math.floor(this.random() * items.length)] : undefined;
  }

  #set(ref: string, digest: string): void {
    this.expected.set(ref, digest);
    this.setAt.set(ref, Date.now() - this.started);
  }

  async #step(kind: string, detail: string, fn: () => Promise<void>): Promise<void> {
    const op: Op = { at: Date.now() - this.started, kind, detail };
    try {
      await fn();
    } catch (e) {
      op.error = e instanceof Error ? e.message.split("\n")[0]! : String(e);
    }
    this.ops.push(op);
  }

  /** A fresh image under a new ref (a fifth of them not unpacked). */
  import(): Promise<void> {
    const n = ++this.#n;
    const ref = `${REPO}/fresh-${n}:1`;
    const unpack = this.random() >= this.noUnpackShare;
    return this.#step("import", `${ref}${unpack ? "" : " --no-unpack"}`, async () => {
      this.#set(ref, await this.c.importImage(SOAK_NS, ref, `soak-${n}`, [], { unpack }));
    });
  }

  /**
   * An image nobody uses (`docker.io/junk/…`): the prunes' steady work, so removal, container
   * clean-up and content prune run while the rest of the workload goes on.
   */
  junk(): Promise<void> {
    const n = ++this.#n;
    const ref = `docker.io/junk/j-${n}:1`;
    return this.#step("junk", ref, async () => {
      await this.c.importImage(SOAK_NS, ref, `junk-${n}`);
    });
  }

  /**
   * New content under a junk ref, likely one a prune is about to remove (the tag moves while
   * ctre removes it): from then on the workload expects it, until a prune that started after the
   * move removes it by the policy.
   */
  async revive(): Promise<void> {
    // One that is still there: the prunes are likely removing it right now.
    const listed = await this.c.ctrOk([
      "-n",
      SOAK_NS,
      "image",
      "ls",
      "-q",
      `name~="^docker.io/junk/"`,
    ])
      .catch(() => "");
    const ref = this.#pick(listed.split("\n").filter((l) => l !== ""));
    if (ref === undefined) return this.junk();
    const n = ++this.#n;
    return this.#step("revive", ref, async () => {
      this.#set(ref, await this.c.importImage(SOAK_NS, ref, `revive-${n}`));
    });
  }

  /** New content under a ref the workload made before (the tag moves). */
  reimport(): Promise<void> {
    const ref = this.#pick([...this.expected.keys()].filter((r) => r.includes("/fresh-")));
    if (ref === undefined) return this.import();
    const n = ++this.#n;
    return this.#step("reimport", ref, async () => {
      this.#set(ref, await this.c.importImage(SOAK_NS, ref, `soak-${n}`));
    });
  }

  /** A second ref for an image the workload made (`ctr image tag --force`). */
  tag(): Promise<void> {
    const ref = this.#pick([...this.expected.keys()]);
    if (ref === undefined) return this.import();
    const alias = `${REPO}/alias-${Math.floor(this.random() * 6)}:1`;
    return this.#step("tag", `${ref} -> ${alias}`, async () => {
      const digest = this.expected.get(ref)!;
      await this.c.ctrOk(["-n", SOAK_NS, "image", "tag", "--force", ref, alias]);
      this.#set(alias, digest);
    });
  }

  /** Starts a long-running container from one of the workload's refs. */
  start(): Promise<void> {
    const ref = this.#pick([...this.expected.keys()]);
    if (ref === undefined) return this.import();
    const id = `soak-c${++this.#n}`;
    return this.#step("start", `${id} from ${ref}`, async () => {
      await this.c.run(SOAK_NS, ref, id);
      this.running.set(id, ref);
    });
  }

  /** Stops and removes one running container (kill, task delete, container rm). */
  stop(): Promise<void> {
    const id = this.#pick([...this.running.keys()]);
    if (id === undefined) return this.start();
    return this.#step("stop", id, async () => {
      this.running.delete(id);
      await this.c.ctrOk(["-n", SOAK_NS, "task", "kill", "-s", "SIGKILL", id]);
      await this.c.waitTask(SOAK_NS, id, "STOPPED");
      await this.c.ctrOk(["-n", SOAK_NS, "task", "delete", id]);
      await this.c.ctrOk(["-n", SOAK_NS, "container", "rm", id]);
    });
  }

  /** A throw-away `ctr run --rm` from one of the workload's refs. */
  runOnce(): Promise<void> {
    const ref = this.#pick([...this.expected.keys()]);
    if (ref === undefined) return this.import();
    const id = `soak-once${++this.#n}`;
    return this.#step("run --rm", `${id} from ${ref}`, () => this.c.runOnce(SOAK_NS, ref, id));
  }

  /** One random step, weighted like a node that pulls and starts more than it re-tags. */
  next(): Promise<void> {
    const r = this.random();
    if (r < 0.22) return this.import();
    if (r < 0.3) return this.junk();
    if (r < 0.36) return this.revive();
    if (r < 0.42) return this.reimport();
    if (r < 0.5) return this.tag();
    if (r < 0.7) return this.start();
    if (r < 0.85) return this.stop();
    return this.runOnce();
  }
}
