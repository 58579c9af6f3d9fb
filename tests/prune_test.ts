/**
 * `prune()` as a whole against a node in memory (tests/support/fake_node.ts) and the fake io:
 * the double check, the prompt and the re-check after it, the last-second re-read of each batch,
 * disk-pressure batches, content prune that keeps every image whole, and a failure in each step.
 */
import assert from "node:assert/strict";
import { prune, type PruneOptions } from "../lib/prune/prune.ts";
import { fail } from "./support/fake_ctr.ts";
import { FakeIo } from "./support/fake_io.ts";
import { FakeNode } from "./support/fake_node.ts";
import { pruneOptions } from "./support/prune_options.ts";

const img = (name: string) => `docker.io/library/${name}:1`;

const stateDirs: string[] = [];
async function options(over: Partial<PruneOptions> = {}): Promise<PruneOptions> {
  const stateDir = await Deno.makeTempDir({ prefix: "ctre-prune-test-" });
  stateDirs.push(stateDir);
  return pruneOptions(stateDir, over);
}

/** A node with: old unused `old` (prunable), `run` used by a running container, young `new`. */
function node(): FakeNode {
  const n = new FakeNode();
  n.addImage("default", img("old"));
  n.addImage("default", img("run"));
  n.addContainer("default", "c-run", img("run"), "RUNNING");
  n.addImage("default", img("new"), { age: "2 days" });
  return n;
}

/** The argument lists of the ctr calls that match `words` (a prefix after `-n ns`). */
function callsOf(n: FakeNode, ...words: string[]): string[][] {
  return n.ctr.calls.filter((a) => words.every((w, i) => a[i + 2] === w));
}

function json(io: FakeIo) {
  return JSON.parse(io.stdout.text);
}

Deno.test("prune() forced removes exactly the prunable images and cleans up", async () => {
  const n = node();
  n.addContainer("default", "c-gone", img("new"), "STOPPED");
  const io = new FakeIo();
  assert.equal(await prune(n.containerd, await options(), io), 0, io.stderr.text);
  assert.deepEqual(n.refs("default"), [img("new"), img("run")]);
  assert.match(io.stdout.text, /^NS REF_TO_PRUNE\ndefault docker.io\/library\/old:1\n/m);
  assert.match(io.stdout.text, /^\(deleted\) default docker.io\/library\/old:1$/m);
  assert.match(io.stdout.text, /^Removed 1 of 1 images$/m);
  assert.match(io.stdout.text, /^\(deleted container\) default /m);
  assert.deepEqual([...n.ns("default").containers.keys()], ["c-run"]);
  // The content store shrank by the old image's blobs and the stripped layers: measured.
  const m = /^Total reclaimed space: (.*) \(content store (.*) before, (.*) after;/m.exec(
    io.stdout.text,
  );
  assert.ok(m, io.stdout.text);
  // Before: three images of ~1 MB. After: the two kept manifests and configs (their layers
  // went in content prune: they run from their snapshots).
  assert.deepEqual([m[2], m[3]], ["2.9 MiB", "1.8 KiB"]);
  assert.equal(m[1], "2.9 MiB");
});

Deno.test("prune() keeps an image used in any pass of the double check", async (t) => {
  await t.step("used from the second pass on: used-during-double-check", async () => {
    const n = node();
    let passes = 0;
    n.hook = (args) => {
      if (args.join(" ") === "-n default content ls" && ++passes === 2) {
        n.addContainer("default", "c-late", img("old"));
      }
      return undefined;
    };
    const io = new FakeIo();
    const code = await prune(n.containerd, await options({ doubleCheck: 15, json: true }), io);
    assert.equal(code, 0, io.stderr.text);
    assert.deepEqual(n.refs("default"), [img("new"), img("old"), img("run")]);
    const old = json(io).images.find((i: { refs: string[] }) => i.refs[0] === img("old"));
    assert.equal(old.reason, "used-during-double-check");
    // Passes stop once nothing is prunable: the second one (after one 1.5 s sleep) found it.
    assert.deepEqual(io.sleeps, [1500]);
    assert.equal(callsOf(n, "image", "rm").length, 0);
  });

  await t.step("used for one pass only: still kept", async () => {
    const n = node();
    let passes = 0;
    n.hook = (args) => {
      if (args.join(" ") === "-n default content ls") {
        passes++;
        if (passes === 3) n.addContainer("default", "c-blip", img("old"));
        if (passes === 4) n.ns("default").containers.delete("c-blip");
      }
      return undefined;
    };
    const io = new FakeIo();
    assert.equal(await prune(n.containerd, await options({ doubleCheck: 15 }), io), 0);
    assert.ok(n.refs("default").includes(img("old")));
    assert.match(io.stdout.text, /^Nothing to prune/m);
  });

  await t.step("only the first and the last pass measure the snapshots", async () => {
    const n = node();
    const io = new FakeIo();
    assert.equal(await prune(n.containerd, await options({ doubleCheck: 6, json: true }), io), 0);
    const passes = callsOf(n, "content", "ls").length;
    // Passes at 0, 1.5, 3, 4.5 and 6 s: the first and the last measure, then once after removal.
    assert.equal(passes, 5 + 3, "5 passes, content prune's two listings, the measurement after");
    assert.equal(callsOf(n, "snapshot", "--snapshotter", "overlayfs", "usage").length, 2 + 1);
    const old = json(io).images.find((i: { refs: string[] }) => i.refs[0] === img("old"));
    assert.ok(old.snapshotBytes > 0, "the unmeasured passes keep the measured figures");
  });

  await t.step("a countdown on a terminal, erased at the end", async () => {
    const n = node();
    const io = new FakeIo({ stderrIsTerminal: true });
    await prune(n.containerd, await options({ doubleCheck: 3 }), io);
    assert.match(io.stderr.text, /double check to avoid cleaning mid-restart\.\.\. 3 secs/);
    const after = io.stderr.text.slice(io.stderr.text.lastIndexOf("secs)") + "secs)".length);
    assert.ok(after.startsWith("\x1b[1K\r"), JSON.stringify(after));
  });
});

Deno.test("prune() shows one updating progress line on a terminal, none elsewhere", async (t) => {
  const many = () => {
    const n = node();
    for (const name of ["a", "b", "c"]) n.addImage("k8s.io", img(name));
    return n;
  };
  await t.step("on a terminal: removal, clean-up and content prune, each erased", async () => {
    const io = new FakeIo({ stderrIsTerminal: true });
    assert.equal(await prune(many().containerd, await options(), io), 0);
    const err = io.stderr.text;
    // Four images: old:1 in default, a, b and c in k8s.io.
    assert.ok(err.includes("\r\x1b[Kremoving images 0/4"), JSON.stringify(err));
    assert.ok(err.includes("\r\x1b[Kremoving images 4/4"), JSON.stringify(err));
    // deno-lint-ignore no-control-regex -- the terminal control sequences are what is tested
    assert.match(err, /\r\x1b\[Kcleaning up containers in default, namespace 1\/2/);
    // deno-lint-ignore no-control-regex -- the terminal control sequences are what is tested
    assert.match(err, /\r\x1b\[Kpruning content in k8s\.io, namespace 2\/2/);
    assert.ok(err.endsWith("\r\x1b[K"), JSON.stringify(err.slice(-40)));
    // Every other stderr line starts at the left margin: the progress line was erased first.
    assert.ok(!/[0-9]\/[0-9][^\r\n]/.test(err.replaceAll("\r\x1b[K", "\r")), JSON.stringify(err));
  });
  await t.step("not on a terminal: no progress, no control characters", async () => {
    const io = new FakeIo({ stderrIsTerminal: false });
    assert.equal(await prune(many().containerd, await options(), io), 0);
    // deno-lint-ignore no-control-regex -- the terminal control sequences are what is tested
    assert.ok(!/[\r\x1b]|removing images/.test(io.stderr.text + io.stdout.text));
    assert.match(io.stdout.text, /^Removed 4 of 4 images$/m);
  });
});

class AnsweringIo extends FakeIo {
  constructor(answer: string | null, readonly onAnswer: () => void = () => {}) {
    super({ answers: [answer] });
  }
  override readLine(): Promise<string | null> {
    this.onAnswer();
    return super.readLine();
  }
}

Deno.test("prune() asks, and removes only on a clear yes", async (t) => {
  for (const [answer, code] of [["n", 1], [null, 1], ["yes please", 1], [" Y ", 0]] as const) {
    await t.step(`answer ${JSON.stringify(answer)}: exit ${code}`, async () => {
      const n = node();
      const io = new AnsweringIo(answer);
      assert.equal(await prune(n.containerd, await options({ mode: "ask" }), io), code);
      assert.match(io.stdout.text, /^NS REF_TO_PRUNE\ndefault docker.io\/library\/old:1\n/m);
      assert.match(io.stdout.text, /Prune \(y\/n\)\? /);
      assert.equal(n.refs("default").includes(img("old")), code === 1);
      if (code === 1) {
        assert.match(io.stderr.text, /^Aborted, nothing removed$/m);
        assert.equal(callsOf(n, "image", "rm").length, 0);
      }
    });
  }

  await t.step("used while the prompt waited: kept after y", async () => {
    const n = node();
    const io = new AnsweringIo("y", () => n.addContainer("default", "c-now", img("old")));
    assert.equal(await prune(n.containerd, await options({ mode: "ask", verbose: true }), io), 0);
    assert.ok(n.refs("default").includes(img("old")));
    assert.match(
      io.stdout.text,
      /\(keeping\) default docker.io\/library\/old:1: used since the list was made$/m,
    );
    assert.match(io.stdout.text, /^Removed 0 of 0 images$/m);
    assert.equal(callsOf(n, "image", "rm").length, 0);
  });
});

Deno.test("prune() re-reads each batch's refs right before removing them", async () => {
  const n = node();
  n.addImage("default", img("other"));
  const fresh = n.addImage("default", "docker.io/library/fresh:1", { age: "1 second" });
  n.hook = (args) => {
    // A pull re-points old:1 after the plan, right before the re-read.
    if (args.includes("ls") && args.some((a) => a.startsWith("name=="))) {
      n.tag("default", img("old"), fresh);
    }
    return undefined;
  };
  const io = new FakeIo();
  assert.equal(await prune(n.containerd, await options({ json: true }), io), 0, io.stderr.text);
  assert.ok(n.refs("default").includes(img("old")), "the re-pointed ref stays");
  assert.ok(!n.refs("default").includes(img("other")));
  assert.match(
    io.stderr.text,
    new RegExp(`^\\(kept: now points to ${fresh}\\) default ${img("old")}$`, "m"),
  );
  const doc = json(io);
  assert.deepEqual(doc.removal.repointed, [{
    namespace: "default",
    ref: img("old"),
    digest: fresh,
  }]);
  const ls = callsOf(n, "image", "ls").filter((a) => a.length > 4);
  assert.deepEqual(ls, [[
    "-n",
    "default",
    "image",
    "ls",
    `name=="${img("old")}"`,
    `name=="${img("other")}"`,
  ]]);
});

Deno.test("prune() content prune keeps an image whose layers have no other copy", async (t) => {
  await t.step("every kept image unpacked: their references stripped, then a GC", async () => {
    const n = node();
    const run = n.ns("default").images.get(img("run"))!.digest;
    const io = new FakeIo();
    assert.equal(await prune(n.containerd, await options(), io), 0, io.stderr.text);
    assert.equal(callsOf(n, "content", "prune", "references").length, 0);
    assert.ok(callsOf(n, "content", "label").length > 0);
    assert.equal(callsOf(n, "leases", "delete", "--sync").length, 1);
    // Its layer blob went: it runs from its snapshot.
    const layer = n.ns("default").content.get(run)!.labels.get("containerd.io/gc.ref.content.l.0");
    assert.equal(layer, undefined);
  });

  await t.step("a --no-unpack image kept: only the others lose their references", async () => {
    const n = node();
    const offline = n.addImage("default", img("offline"), {
      age: "2 hours",
      unpacked: false,
      layers: 2,
    });
    const layersOf = (d: string) =>
      [...n.ns("default").content.get(d)!.labels].filter(([k]) => k.includes(".l.")).map((
        [, v],
      ) => v);
    const offlineLayers = layersOf(offline);
    const run = n.ns("default").images.get(img("run"))!.digest;
    const runLayers = layersOf(run);
    const io = new FakeIo({});
    assert.equal(await prune(n.containerd, await options({ json: true }), io), 0, io.stderr.text);
    assert.equal(callsOf(n, "content", "prune", "references").length, 0);
    for (const l of offlineLayers) assert.ok(n.has("default", l), "the only copy stays");
    for (const l of runLayers) assert.ok(!n.has("default", l), "an unpacked image's layer goes");
    assert.match(
      io.stderr.text,
      /^\(protected content\) default docker.io\/library\/offline:1: its layers have no other copy/m,
    );
    assert.deepEqual(json(io).removal.content[0].protected, [img("offline")]);
    assert.equal(callsOf(n, "leases", "delete", "--sync").length, 1);
  });
});

Deno.test("prune() disk-pressure batches re-check their candidates", async () => {
  const n = new FakeNode();
  for (const name of ["a", "b", "c"]) n.addImage("default", img(name));
  // Just over budget: the first batch is the least recently used image, a. While it goes, a
  // pull fills the store again and a container starts from b: the next batch must skip b.
  let rms = 0;
  n.hook = (args) => {
    if (args[2] === "image" && args[3] === "rm" && ++rms === 1) {
      n.addImage("default", img("pulled"), { age: "1 second" });
      n.addContainer("default", "c-b", img("b"));
    }
    return undefined;
  };
  const io = new FakeIo();
  const opts = await options({
    json: true,
    budget: { kind: "max-store-size", maxBytes: n.storeBytes() - 1 },
  });
  assert.equal(await prune(n.containerd, opts, io), 0, io.stderr.text);
  const doc = json(io);
  assert.deepEqual(doc.removal.removed.map((r: { ref: string }) => r.ref), [img("a"), img("c")]);
  assert.deepEqual(n.refs("default"), [img("b"), img("pulled")]);
  const b = doc.images.find((i: { refs: string[] }) => i.refs[0] === img("b"));
  assert.equal(b.decision, "keep");
  assert.equal(b.reason, "used-during-double-check");
  assert.match(io.stderr.text, /^\(keeping\) default docker.io\/library\/b:1: used since/m);
  assert.match(io.stderr.text, /^Target met: /m);
});

Deno.test("prune() reports a failure in each step and exits 1", async (t) => {
  await t.step("containerd unreachable: throws before anything", async () => {
    const n = node();
    n.hook = () => fail('ctr: failed to dial "/run/containerd/containerd.sock"\n');
    await assert.rejects(
      prune(n.containerd, await options(), new FakeIo()),
      /ctr namespace ls -q exited with code 1: .*is containerd running/,
    );
  });

  await t.step("a planning pass fails: throws, nothing removed", async () => {
    const n = node();
    n.hook = (args) => args[2] === "container" ? fail("ctr: boom\n") : undefined;
    await assert.rejects(prune(n.containerd, await options(), new FakeIo()), /container ls exited/);
    assert.equal(callsOf(n, "image", "rm").length, 0);
  });

  await t.step("the re-read fails: the batch is failed, not removed", async () => {
    const n = node();
    n.hook = (args) => args.some((a) => a.startsWith("name==")) ? fail("ctr: boom\n") : undefined;
    const io = new FakeIo();
    assert.equal(await prune(n.containerd, await options(), io), 1);
    assert.ok(n.refs("default").includes(img("old")));
    assert.match(
      io.stderr.text,
      /^Cannot remove image "docker.io\/library\/old:1" in namespace default: /m,
    );
  });

  await t.step("image rm fails", async () => {
    const n = node();
    n.hook = (args) =>
      args[3] === "rm" && args[2] === "image"
        ? fail(`ctr: unable to delete ${img("old")}: failed precondition\n`)
        : undefined;
    const io = new FakeIo();
    assert.equal(await prune(n.containerd, await options({ json: true }), io), 1);
    assert.equal(json(io).removal.failed[0].ref, img("old"));
  });

  await t.step("container clean-up fails: the rest goes on", async () => {
    const n = node();
    n.hook = (args) => args[2] === "task" ? fail("ctr: boom\n") : undefined;
    const io = new FakeIo();
    assert.equal(await prune(n.containerd, await options(), io), 1);
    assert.match(io.stderr.text, /^Container clean-up of namespace default failed: /m);
    assert.equal(callsOf(n, "leases", "delete", "--sync").length, 1, "content prune still ran");
  });

  await t.step("content prune fails", async () => {
    const n = node();
    n.hook = (args) =>
      args[2] === "leases" && args[3] === "delete" ? fail("ctr: boom\n") : undefined;
    const io = new FakeIo();
    assert.equal(await prune(n.containerd, await options(), io), 1);
    assert.match(io.stderr.text, /^Content prune of namespace default failed: /m);
  });
});

globalThis.addEventListener("unload", () => {
  for (const dir of stateDirs) Deno.removeSync(dir, { recursive: true });
});
