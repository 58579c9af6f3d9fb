/**
 * End to end on containerd's real CRI plugin (tests/support/cri.ts: pods, containers and pulls
 * through the CRI gRPC API from a local registry), ctre run as it ships: kubelet's containers
 * are left to kubelet unless asked, a pull seen by the recorder is a use, a container re-created
 * during the double check keeps its image, a pin is remembered after its label is gone, and
 * --keep-latest keeps the newest of each repository.
 *
 * What CRI did in each case is logged (`CRI:` lines) for the notes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type CliOptions, ctreArgs, runCtre, spawnCtre, tempStateDir } from "./support/cli.ts";
import { ctrWrapper } from "./support/ctr_wrapper.ts";
import { CRI_NAMESPACE, type CriNode, withCri } from "./support/cri.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A forced prune of k8s.io that does not wait: no age limit, no double check. */
const FORCE_NOW = [
  "prune",
  "-f",
  "--json",
  "-n",
  CRI_NAMESPACE,
  "--min-age",
  "0",
  "--double-check",
  "0",
];

interface DocImage {
  refs: string[];
  decision: string;
  reason: string;
  lastPull: number | null;
  pinnedRememberedSince: number | null;
}
interface Doc {
  images: DocImage[];
  removal: { containers: { deleted: string[]; kept: string[] } | null } | null;
}

function note(text: string): void {
  // deno-lint-ignore no-console
  console.log(`CRI: ${text}`);
}

async function prune(node: CriNode, stateDir: string, extra: string[] = []): Promise<Doc> {
  const r = await runCtre([...FORCE_NOW, ...extra], { address: node.containerd.address, stateDir });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout) as Doc;
}

function imageOf(doc: Doc, ref: string): DocImage {
  const found = doc.images.find((i) => i.refs.includes(ref));
  assert.ok(found, `${ref} not in the plan: ${JSON.stringify(doc.images.map((i) => i.refs))}`);
  return found;
}

/** Runs `fn` on a CRI node with a fresh state dir (removed afterwards). */
function criTest(name: string, fn: (node: CriNode, stateDir: string) => Promise<void>): void {
  Deno.test({
    name,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      await withCri(async (node) => {
        const stateDir = await tempStateDir();
        try {
          await fn(node, stateDir);
        } finally {
          await Deno.remove(stateDir, { recursive: true }).catch(() => {});
        }
      });
    },
  });
}

criTest(
  "prune leaves kubelet's exited containers and stopped sandboxes to CRI; --cleanup-kubelet-containers removes them",
  async (node, stateDir) => {
    const a = await node.pushImage("library/a:1", "a1");
    const unused = await node.pushImage("library/unused:1", "u1");
    await node.pullImage(a.ref);
    await node.pullImage(unused.ref);
    // pod1 runs on; its container exited (kubelet would restart or remove it).
    const pod1 = await node.runPod("web");
    const exited = await node.createContainer(pod1, "app", a.ref);
    await node.startContainer(exited);
    await node.stopContainer(exited);
    // pod2 stopped entirely: sandbox NOTREADY, container exited.
    const pod2 = await node.runPod("done");
    const c2 = await node.createContainer(pod2, "app", a.ref);
    await node.startContainer(c2);
    await node.stopPod(pod2.id);
    // A container made with ctr in the same namespace keeps today's clean-up.
    await node.containerd.runToExit(CRI_NAMESPACE, a.ref, "by-ctr");

    const doc = await prune(node, stateDir);
    assert.equal(imageOf(doc, unused.ref).decision, "prune", "something went, so clean-up ran");
    const kept = doc.removal?.containers?.kept ?? [];
    for (const id of [exited, c2, pod2.id, pod1.id]) {
      assert.ok(kept.includes(`${CRI_NAMESPACE} ${id}`), `${id} kept: ${JSON.stringify(doc)}`);
    }
    assert.deepEqual(doc.removal?.containers?.deleted, [`${CRI_NAMESPACE} by-ctr`]);
    assert.deepEqual(
      await node.containerIds(),
      [exited, c2, pod1.id, pod2.id].sort(),
      "ctr still lists every CRI container",
    );
    assert.equal((await node.containerStatus(exited)).status.state, "CONTAINER_EXITED");
    assert.equal((await node.containerStatus(c2)).status.state, "CONTAINER_EXITED");
    assert.equal((await node.podSandboxStatus(pod2.id)).status.state, "SANDBOX_NOTREADY");
    assert.equal((await node.podSandboxStatus(pod1.id)).status.state, "SANDBOX_READY");
    note("default clean-up: exited containers and stopped sandboxes kept, statuses answer");

    // Opt in: with another prunable image, clean-up runs and removes them behind CRI's back.
    // Task-less containers updated within 5 minutes are spared (may be about to start), and
    // CRI never updates its exited ones: make them 10 minutes old (containerd restarts).
    const more = await node.pushImage("library/more:1", "m1");
    await node.pullImage(more.ref);
    await node.ageContainers([exited, c2, pod1.id, pod2.id], 600);
    assert.equal((await node.containerStatus(exited)).status.state, "CONTAINER_EXITED");
    const doc2 = await prune(node, stateDir, ["--cleanup-kubelet-containers"]);
    assert.equal(imageOf(doc2, more.ref).decision, "prune");
    assert.deepEqual(
      (doc2.removal?.containers?.deleted ?? []).sort(),
      [exited, c2, pod2.id].map((id) => `${CRI_NAMESPACE} ${id}`).sort(),
    );
    assert.deepEqual(await node.containerIds(), [pod1.id], "only the running sandbox is left");
    // What CRI makes of containers removed behind its back:
    for (
      const [what, call] of [
        ["ContainerStatus(exited)", () => node.containerStatus(exited)],
        ["PodSandboxStatus(stopped pod)", () => node.podSandboxStatus(pod2.id)],
      ] as const
    ) {
      try {
        const r = await call();
        note(`after --cleanup-kubelet-containers ${what} still answers: ${r.status?.state}`);
      } catch (e) {
        note(`after --cleanup-kubelet-containers ${what} fails: ${(e as Error).message}`);
      }
    }
    const listed = (await node.listContainers()).map((c: { id: string }) => c.id);
    note(`after --cleanup-kubelet-containers CRI ListContainers: ${listed.length} (${listed})`);
    const pods = (await node.listPods()).map((p: { id: string; state: string }) => p.state);
    note(`after --cleanup-kubelet-containers CRI ListPodSandbox states: ${pods}`);
    // kubelet's next step: RemoveContainer/RemovePodSandbox of what is gone.
    for (
      const [what, call] of [
        ["RemoveContainer", () => node.removeContainer(exited)],
        ["RemovePodSandbox", () => node.removePod(pod2.id)],
      ] as const
    ) {
      try {
        await call();
        note(`${what} of a container ctre removed: ok`);
      } catch (e) {
        note(`${what} of a container ctre removed: ${(e as Error).message}`);
      }
    }
  },
);

/** A running `ctre record-image-starts`, its stdout collected. */
class Recorder {
  readonly child: Deno.ChildProcess;
  stdout = "";
  readonly done: Promise<unknown>;
  constructor(opts: CliOptions) {
    this.child = spawnCtre(["record-image-starts", "--flush-interval", "1s"], opts);
    const pump = async (s: ReadableStream<Uint8Array>, into: boolean) => {
      for await (const t of s.pipeThrough(new TextDecoderStream())) if (into) this.stdout += t;
    };
    this.done = Promise.all([
      this.child.status,
      pump(this.child.stdout, true),
      pump(this.child.stderr, false),
    ]);
  }
  async waitFor(re: RegExp, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!re.test(this.stdout)) {
      if (Date.now() > deadline) throw new Error(`recorder did not print ${re}:\n${this.stdout}`);
      await sleep(50);
    }
  }
  async stop(): Promise<void> {
    try {
      this.child.kill("SIGTERM");
    } catch {
      // gone
    }
    await this.done;
  }
}

criTest(
  "a CRI pull of a tag whose content is already here, seen by the recorder, keeps the image",
  async (node, stateDir) => {
    // Same variant: a:1 and a:2 are one image (same manifest digest) under two tags.
    const a1 = await node.pushImage("library/a:1", "same");
    const a2 = await node.pushImage("library/a:2", "same");
    assert.equal(a1.digest, a2.digest);
    const control = await node.pushImage("library/control:1", "control");
    await node.pullImage(a1.ref);
    await node.pullImage(control.ref);
    const opts = { address: node.containerd.address, stateDir };
    const rec = new Recorder(opts);
    try {
      await rec.waitFor(/^Listening for container start events$/m);
      // Follow the events for sure: label a probe image (own namespace) until it is seen.
      await node.containerd.importImage("probe", "docker.io/library/probe:1", "probe");
      for (let i = 0; !/^P \d+ probe /m.test(rec.stdout); i++) {
        await node.containerd.label("probe", "docker.io/library/probe:1", `n=${i}`);
        await sleep(300);
        if (i > 50) throw new Error(`recorder sees no events:\n${rec.stdout}`);
      }
      const from = rec.stdout.length;
      const t0 = Math.floor(Date.now() / 1000);
      await node.pullImage(a2.ref);
      await rec.waitFor(new RegExp(`^P \\d+ k8s.io ${a2.ref.replace(/[.]/g, "\\.")}$`, "m"));
      note(`events of a pull of a tag for content already present:\n${rec.stdout.slice(from)}`);
      // Written at the next flush: polled until it is, not slept for.
      const line = new RegExp(`^\\d+ k8s.io ${a2.ref.replace(/[.]/g, "\\.")}$`, "m");
      const read = () => Deno.readTextFile(join(stateDir, "image_pulls")).catch(() => "");
      for (const deadline = Date.now() + 15_000; !line.test(await read());) {
        if (Date.now() > deadline) assert.fail(`image_pulls never got the pull:\n${await read()}`);
        await sleep(100);
      }
      const doc = await prune(node, stateDir);
      const kept = imageOf(doc, a1.ref);
      assert.deepEqual([kept.decision, kept.reason], ["keep", "recently-used"]);
      assert.ok(kept.lastPull !== null && kept.lastPull >= t0 - 2, `lastPull ${kept.lastPull}`);
      assert.ok(kept.refs.includes(a2.ref));
      assert.equal(
        imageOf(doc, control.ref).decision,
        "prune",
        "a pull before recording is not seen",
      );
      assert.ok((await node.imageRefs()).includes(a1.ref));
      assert.ok(!(await node.imageRefs()).includes(control.ref));
      const status = await runCtre(["status", "--json"], { stateDir });
      const entry = JSON.parse(status.stdout).entries.find((e: { ref: string }) =>
        e.ref === a2.ref
      );
      assert.ok(entry?.lastPull >= t0 - 2, status.stdout);
    } finally {
      await rec.stop();
    }
  },
);

criTest(
  "a container re-created from the same image during the double check keeps its image",
  async (node, stateDir) => {
    const a = await node.pushImage("library/a:1", "restart");
    await node.pullImage(a.ref);
    const pod = await node.runPod("crashy");
    const first = await node.createContainer(pod, "app", a.ref);
    await node.startContainer(first);
    // kubelet restarting a crashed container: the old one goes, a new one comes seconds later.
    await node.stopContainer(first);
    await node.removeContainer(first);
    // ctre's ctr calls are logged (tests/support/ctr_wrapper.ts) as they start. A planning pass
    // lists content, images, then containers, one after the other, and passes follow each other:
    // when the third pass starts (its `content ls`), two whole passes saw no container of a:1.
    const wrapper = await ctrWrapper({ address: node.containerd.address });
    const passes = async () =>
      (await wrapper.calls()).filter((l) => / -n k8s\.io content ls$/.test(l)).length;
    const output = new Deno.Command(Deno.execPath(), {
      // Long enough for a loaded machine: the double check ends at the first pass in which
      // nothing is prunable any more, i.e. right after the re-created container is seen.
      args: ctreArgs([...FORCE_NOW.slice(0, -1), "60s"], {
        address: node.containerd.address,
        stateDir,
      }),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", PATH: `${wrapper.dir}:${Deno.env.get("PATH") ?? ""}` },
    }).output();
    // Two passes saw no container of a:1 (it was prunable in them) ...
    const deadline = Date.now() + 30_000;
    while (await passes() < 3) {
      assert.ok(Date.now() < deadline, "ctre did not plan twice within 30 s");
      await sleep(50);
    }
    // ... then kubelet's new container comes.
    const second = await node.createContainer(pod, "app", a.ref, undefined, 1);
    await node.startContainer(second);
    const out = await output;
    await wrapper.cleanup();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const doc = JSON.parse(stdout) as Doc;
    const image = imageOf(doc, a.ref);
    assert.equal(image.decision, "keep");
    assert.ok(["in-use", "used-during-double-check"].includes(image.reason), image.reason);
    note(`re-created during the double check: kept as ${image.reason}`);
    assert.ok((await node.imageRefs()).includes(a.ref));
    assert.equal((await node.containerStatus(second)).status.state, "CONTAINER_RUNNING");
  },
);

criTest(
  "a pinned image whose label is removed stays protected by pin memory until --pin-memory ends",
  async (node, stateDir) => {
    const a = await node.pushImage("library/airgap:1", "airgap");
    await node.pullImage(a.ref);
    await node.containerd.label(CRI_NAMESPACE, a.ref, "io.cattle.k3s.pinned=true");
    const first = imageOf(await prune(node, stateDir), a.ref);
    assert.deepEqual([first.reason, first.pinnedRememberedSince], ["pinned", null]);
    const memory = await Deno.readTextFile(join(stateDir, "pinned"));
    assert.match(memory, new RegExp(`k8s.io ${a.digest} ${a.ref.replace(/[.]/g, "\\.")}$`, "m"));
    // k3s restarted and lost the label.
    await node.containerd.label(CRI_NAMESPACE, a.ref, "io.cattle.k3s.pinned=");
    assert.doesNotMatch(
      await node.containerd.ctrOk(["-n", CRI_NAMESPACE, "image", "ls", `name==${a.ref}`]),
      /k3s\.pinned/,
    );
    const second = imageOf(await prune(node, stateDir), a.ref);
    assert.equal(second.reason, "pinned");
    assert.ok(second.pinnedRememberedSince !== null);
    const verbose = await runCtre(
      ["prune", "--dry-run", "-v", "-n", CRI_NAMESPACE, "--min-age", "0", "--double-check", "0"],
      { address: node.containerd.address, stateDir },
    );
    assert.match(verbose.stdout, /pinned \(remembered since \d{4}-\d\d-\d\dT[\d:]+Z\)/);
    const status = JSON.parse((await runCtre(["status", "--json"], { stateDir })).stdout);
    assert.ok(status.pinned.some((p: { ref: string }) => p.ref === a.ref), JSON.stringify(status));
    assert.ok((await node.imageRefs()).includes(a.ref));
    // Not seen pinned for longer than --pin-memory: it goes.
    await sleep(2500);
    const third = imageOf(await prune(node, stateDir, ["--pin-memory", "2s"]), a.ref);
    assert.deepEqual([third.decision, third.reason], ["prune", "prune"]);
    assert.ok(!(await node.imageRefs()).includes(a.ref));
  },
);

criTest(
  "--keep-latest 2 keeps exactly the two newest images of each repository",
  async (node, stateDir) => {
    const pushed = [];
    for (const tag of ["1", "2", "3", "4"]) {
      pushed.push(
        await node.pushImage(`library/app:${tag}`, `app${tag}`),
      );
    }
    const other = await node.pushImage("library/other:1", "other1");
    for (const p of pushed) {
      await node.pullImage(p.ref);
      await sleep(1200); // ctr's content age has whole seconds: keep them apart
    }
    await node.pullImage(other.ref);
    const doc = await prune(node, stateDir, ["--keep-latest", "2"]);
    const reasons = pushed.map((p) => imageOf(doc, p.ref).reason);
    assert.deepEqual(reasons, ["prune", "prune", "kept-latest", "kept-latest"]);
    assert.equal(imageOf(doc, other.ref).reason, "kept-latest");
    const left = await node.imageRefs();
    assert.deepEqual(
      left.filter((r) => r.includes("/library/")).sort(),
      [pushed[2]!, pushed[3]!, other].flatMap((p) => [p.ref, p.digestRef]).sort(),
    );
    // CRI still knows the kept ones, and not the pruned ones.
    assert.equal((await node.imageStatus(pushed[3]!.ref)).image?.id, pushed[3]!.config);
    assert.equal((await node.imageStatus(pushed[0]!.ref)).image, null);
  },
);
