import assert from "node:assert/strict";
import type { NamespaceSnapshot } from "../lib/core/containerd.ts";
import { parseContainerLs, parseContentLs, parseImageLs } from "../lib/ctr/listings.ts";
import type { ContainerRow, ContentBlob, ImageRow } from "../lib/core/containerd.ts";
import {
  globToRegExp,
  imageKey,
  type ImagePlan,
  type Plan,
  planNamespace,
  type Policy,
  prunableSet,
  repositoryOf,
} from "../lib/policy/plan.ts";
import { confirmPass } from "../lib/policy/recheck.ts";
import { usageKey } from "../lib/state/line_file.ts";
import type { Usage } from "../lib/state/usage_db.ts";

const DAY = 86400;
const NOW = 1_800_000_000;
const NS = "k8s.io";

/** A digest made of one repeated hex character. */
function digest(c: string): string {
  return `sha256:${c.repeat(64)}`;
}

function image(ref: string, d: string, labels: Record<string, string> = {}, size = 1000): ImageRow {
  return {
    ref,
    type: "application/vnd.oci.image.index.v1+json",
    digest: d,
    size,
    platforms: "linux/amd64",
    labels: new Map(Object.entries(labels)),
  };
}

function blob(d: string, ageSeconds: number, ageText = "3 weeks"): ContentBlob {
  return { digest: d, size: 500, ageSeconds, ageText, labels: new Map() };
}

function container(id: string, image: string | null): ContainerRow {
  return { id, image, runtime: "io.containerd.runc.v2" };
}

function snapshot(
  images: ImageRow[],
  containers: ContainerRow[] = [],
  content: ContentBlob[] = [...new Set(images.map((i) => i.digest))].map((d) => blob(d, 30 * DAY)),
  ns = NS,
): NamespaceSnapshot {
  return { ns, images, containers, content: new Map(content.map((b) => [b.digest, b])) };
}

const POLICY: Policy = { now: NOW, minAge: 14 * DAY, usedWithin: 14 * DAY, keep: [] };

function plan(
  snap: NamespaceSnapshot,
  usage: [string, string, Usage][] = [],
  policy: Partial<Policy> = {},
): Plan {
  return planNamespace(
    snap,
    new Map(usage.map(([ns, ref, u]) => [usageKey(ns, ref), u])),
    { ...POLICY, ...policy },
  );
}

/** ref[0] → [decision, reason] for a compact view of a plan. */
function decisions(p: Plan): Record<string, [string, string]> {
  return Object.fromEntries(p.images.map((i) => [i.refs[0]!, [i.decision, i.reason]]));
}

Deno.test("planNamespace() prunes an unused image whose content is old enough", () => {
  const d = digest("a");
  const p = plan(snapshot([image("docker.io/library/a:1", d, {}, 4096)], [], [
    blob(d, 21 * DAY - 1800, "3 weeks"),
  ]));
  assert.deepEqual(p, {
    images: [{
      ns: NS,
      digest: d,
      refs: ["docker.io/library/a:1"],
      size: 4096,
      ageSeconds: 21 * DAY - 1800,
      ageText: "3 weeks",
      lastStart: null,
      lastStop: null,
      decision: "prune",
      reason: "prune",
    }],
    warnings: [],
  });
});

Deno.test("planNamespace() keeps every ref of a digest a container uses", () => {
  const d = digest("a");
  const other = digest("b");
  const snap = snapshot(
    [
      image("docker.io/library/a:1", d),
      image("docker.io/library/a:latest", d),
      image(d, d),
      image("docker.io/library/b:1", other),
    ],
    [container("c2", "docker.io/library/a:latest"), container("c1", "docker.io/library/a:1")],
  );
  const p = plan(snap);
  assert.equal(p.images.length, 2);
  const used = p.images.find((i) => i.digest === d)!;
  assert.deepEqual(used, {
    ns: NS,
    digest: d,
    refs: ["docker.io/library/a:1", "docker.io/library/a:latest", d],
    size: 1000,
    ageSeconds: 30 * DAY,
    ageText: "3 weeks",
    lastStart: null,
    lastStop: null,
    decision: "keep",
    reason: "in-use",
    containers: ["c1", "c2"],
    users: [{ id: "c1", how: "name" }, { id: "c2", how: "name" }],
  });
  assert.deepEqual(decisions(p)["docker.io/library/b:1"], ["prune", "prune"]);
  assert.deepEqual(p.warnings, [], "same repository, different tags: no dupe warning");
});

Deno.test("planNamespace() keeps an image used only through its sha256: ref", () => {
  const d = digest("c");
  const p = plan(snapshot(
    [image("registry.k8s.io/coredns/coredns:v1.10.1", d), image(d, d)],
    [container("c1", d)],
  ));
  assert.deepEqual(decisions(p), {
    "registry.k8s.io/coredns/coredns:v1.10.1": ["keep", "in-use"],
  });
  assert.deepEqual(p.images[0]!.refs, ["registry.k8s.io/coredns/coredns:v1.10.1", d]);
});

Deno.test("planNamespace() keeps a young image as too-young", async (t) => {
  const d = digest("a");
  await t.step("content younger than minAge", () => {
    const p = plan(snapshot([image("x:1", d)], [], [blob(d, 14 * DAY - 1, "13 days")]));
    assert.deepEqual(decisions(p), { "x:1": ["keep", "too-young"] });
  });
  await t.step("content exactly minAge old may go", () => {
    const p = plan(snapshot([image("x:1", d)], [], [blob(d, 14 * DAY, "2 weeks")]));
    assert.deepEqual(decisions(p), { "x:1": ["prune", "prune"] });
  });
  await t.step("minAge 0 lets even Less than a second go", () => {
    const p = plan(snapshot([image("x:1", d)], [], [blob(d, 0, "Less than a second")]), [], {
      minAge: 0,
    });
    assert.deepEqual(decisions(p), { "x:1": ["prune", "prune"] });
  });
  await t.step("no content blob for the digest: age unknown, kept", () => {
    const p = plan(snapshot([image("x:1", d)], [], [blob(digest("f"), 100 * DAY)]));
    assert.deepEqual(decisions(p), { "x:1": ["keep", "too-young"] });
    assert.equal(p.images[0]!.ageSeconds, null);
    assert.equal(p.images[0]!.ageText, null);
  });
});

Deno.test("planNamespace() keeps an image recently used by any of its refs", async (t) => {
  const d = digest("a");
  const snap = snapshot([image("docker.io/library/a:1", d), image(d, d)]);
  await t.step("start recorded for the named ref", () => {
    const p = plan(snap, [[NS, "docker.io/library/a:1", { start: NOW - DAY, stop: null }]]);
    assert.deepEqual(decisions(p), { "docker.io/library/a:1": ["keep", "recently-used"] });
    assert.equal(p.images[0]!.lastStart, NOW - DAY);
    assert.equal(p.images[0]!.lastStop, null);
  });
  await t.step("start recorded for the sha256: ref", () => {
    const p = plan(snap, [[NS, d, { start: NOW - DAY, stop: NOW - 10 }]]);
    assert.deepEqual(decisions(p), { "docker.io/library/a:1": ["keep", "recently-used"] });
    assert.equal(p.images[0]!.lastStop, NOW - 10);
  });
  await t.step("an old start with a recent stop", () => {
    const p = plan(snap, [[NS, d, { start: NOW - 100 * DAY, stop: NOW - 13 * DAY }]]);
    assert.deepEqual(decisions(p), { "docker.io/library/a:1": ["keep", "recently-used"] });
  });
  await t.step("an entry without namespace", () => {
    const p = plan(snap, [["*", "docker.io/library/a:1", { start: NOW - DAY, stop: null }]]);
    assert.deepEqual(decisions(p), { "docker.io/library/a:1": ["keep", "recently-used"] });
  });
  await t.step("exactly usedWithin ago still counts", () => {
    const p = plan(snap, [[NS, d, { start: NOW - 14 * DAY, stop: null }]]);
    assert.deepEqual(decisions(p), { "docker.io/library/a:1": ["keep", "recently-used"] });
  });
  await t.step("a use older than usedWithin does not count", () => {
    const p = plan(snap, [[NS, d, { start: NOW - 14 * DAY - 1, stop: NOW - 15 * DAY }]]);
    assert.deepEqual(decisions(p), { "docker.io/library/a:1": ["prune", "prune"] });
    assert.equal(p.images[0]!.lastStart, NOW - 14 * DAY - 1);
  });
  await t.step("a use in another namespace does not count", () => {
    const p = plan(snap, [["default", "docker.io/library/a:1", { start: NOW, stop: null }]]);
    assert.deepEqual(decisions(p), { "docker.io/library/a:1": ["prune", "prune"] });
  });
  await t.step("a use of another ref does not count", () => {
    const p = plan(snap, [[NS, "docker.io/library/a:2", { start: NOW, stop: null }]]);
    assert.deepEqual(decisions(p), { "docker.io/library/a:1": ["prune", "prune"] });
  });
});

Deno.test("planNamespace() keeps pinned images", async (t) => {
  const d = digest("a");
  await t.step("io.cri-containerd.pinned=pinned on one ref pins all refs", () => {
    const p = plan(snapshot([
      image("registry.k8s.io/pause:3.9", d, {
        "io.cri-containerd.image": "managed",
        "io.cri-containerd.pinned": "pinned",
      }),
      image(d, d, { "io.cri-containerd.image": "managed" }),
    ]));
    assert.deepEqual(decisions(p), { "registry.k8s.io/pause:3.9": ["keep", "pinned"] });
    assert.deepEqual(p.images[0]!.refs, ["registry.k8s.io/pause:3.9", d]);
  });
  await t.step("io.cri-containerd.pinned with another value does not pin", () => {
    const p = plan(snapshot([image("x:1", d, { "io.cri-containerd.pinned": "no" })]));
    assert.deepEqual(decisions(p), { "x:1": ["prune", "prune"] });
  });
  await t.step("io.cattle.k3s.pinned with any value pins", () => {
    for (const value of ["pinned", "true", ""]) {
      const p = plan(snapshot([image("x:1", d, { "io.cattle.k3s.pinned": value })]));
      assert.deepEqual(decisions(p), { "x:1": ["keep", "pinned"] }, value);
    }
  });
  await t.step("io.cri-containerd.image=managed alone does not pin", () => {
    const p = plan(snapshot([image("x:1", d, { "io.cri-containerd.image": "managed" })]));
    assert.deepEqual(decisions(p), { "x:1": ["prune", "prune"] });
  });
});

Deno.test("planNamespace() keeps images with a ref matching a keep pattern", () => {
  const pause = digest("a");
  const other = digest("b");
  const p = plan(
    snapshot([
      image("registry.k8s.io/pause:3.9", pause),
      image(pause, pause),
      image("registry.k8s.io/pause", other),
      image("registry.k8s.io/pause-extra:1", digest("c")),
    ]),
    [],
    { keep: ["docker.io/*", "registry.k8s.io/pause:*"] },
  );
  assert.deepEqual(decisions(p), {
    "registry.k8s.io/pause": ["prune", "prune"],
    "registry.k8s.io/pause-extra:1": ["prune", "prune"],
    "registry.k8s.io/pause:3.9": ["keep", "kept-by-pattern"],
  });
  assert.equal(
    p.images.find((i) => i.digest === pause)!.pattern,
    "registry.k8s.io/pause:*",
  );
});

Deno.test("planNamespace() reasons come in a fixed order of precedence", () => {
  const d = digest("a");
  const pinned = { "io.cri-containerd.pinned": "pinned" };
  const recent: [string, string, Usage][] = [[NS, "x:1", { start: NOW, stop: null }]];
  const young = [blob(d, 0, "Less than a second")];
  const keep = { keep: ["x:*"] };
  // in-use beats pinned, pinned beats pattern, pattern beats recently-used, which beats too-young.
  assert.equal(
    plan(snapshot([image("x:1", d, pinned)], [container("c", "x:1")], young), recent, keep)
      .images[0]!.reason,
    "in-use",
  );
  assert.equal(
    plan(snapshot([image("x:1", d, pinned)], [], young), recent, keep).images[0]!
      .reason,
    "pinned",
  );
  assert.equal(
    plan(snapshot([image("x:1", d)], [], young), recent, keep).images[0]!.reason,
    "kept-by-pattern",
  );
  assert.equal(
    plan(snapshot([image("x:1", d)], [], young), recent).images[0]!.reason,
    "recently-used",
  );
  assert.equal(plan(snapshot([image("x:1", d)], [], young)).images[0]!.reason, "too-young");
});

Deno.test("planNamespace() ignores containers without an image", () => {
  const d = digest("a");
  const p = plan(snapshot([image("x:1", d)], [container("moby-1", null)]));
  assert.deepEqual(decisions(p), { "x:1": ["prune", "prune"] });
  assert.deepEqual(p.warnings, []);
});

Deno.test("planNamespace() warns about a container whose image is not listed", () => {
  const d = digest("a");
  const p = plan(snapshot([image("x:1", d)], [container("c1", "gone:1")]));
  assert.deepEqual(decisions(p), { "x:1": ["prune", "prune"] });
  assert.deepEqual(p.warnings, [
    `Container "c1" in namespace ${NS} uses image "gone:1", which is not in the image list; ` +
    "skipping it",
  ]);
});

Deno.test("planNamespace() warns about dupe refs of an in-use digest", async (t) => {
  const d = digest("a");
  await t.step("refs of different repositories", () => {
    const p = plan(snapshot(
      [image("docker.io/library/a:1", d), image("quay.io/x/a:1", d), image(d, d)],
      [container("c1", "docker.io/library/a:1")],
    ));
    assert.deepEqual(p.warnings, [
      `Dupe refs found for ns ${NS} image ${d}, keeping all: ` +
      `docker.io/library/a:1 + quay.io/x/a:1 + ${d}`,
    ]);
  });
  await t.step("a digest ref of another repository", () => {
    const p = plan(snapshot(
      [image("docker.io/library/a:1", d), image(`quay.io/x/a@${d}`, d)],
      [container("c1", "docker.io/library/a:1")],
    ));
    assert.equal(p.warnings.length, 1);
  });
  await t.step("not for sha256: refs, tags and digest refs of one repository", () => {
    const p = plan(snapshot(
      [
        image("docker.io/library/a:1", d),
        image("docker.io/library/a:latest", d),
        image(`docker.io/library/a@${d}`, d),
        image(d, d),
      ],
      [container("c1", d)],
    ));
    assert.deepEqual(p.warnings, []);
  });
  await t.step("not for unused digests", () => {
    const p = plan(snapshot([image("docker.io/library/a:1", d), image("quay.io/x/a:1", d)]));
    assert.deepEqual(p.warnings, []);
  });
});

Deno.test("planNamespace() sorts images by first ref", () => {
  const p = plan(snapshot([
    image("c:1", digest("1")),
    image("a:1", digest("2")),
    image("b:1", digest("3")),
  ]));
  assert.deepEqual(p.images.map((i) => i.refs[0]), ["a:1", "b:1", "c:1"]);
});

Deno.test("confirmPass() (recheck.ts) downgrades what an earlier pass would not prune", async (t) => {
  const d1 = digest("1");
  const d2 = digest("2");
  const d3 = digest("3");
  const first = plan(snapshot([image("a:1", d1), image("b:1", d2), image("c:1", d3)]));
  const before = prunableSet(first.images);
  await t.step("prunableSet() maps ns and digest to the refs", () => {
    assert.deepEqual(
      before,
      new Map([[`${NS} ${d1}`, "a:1"], [`${NS} ${d2}`, "b:1"], [`${NS} ${d3}`, "c:1"]]),
    );
    assert.equal(imageKey({ ns: NS, digest: d1 }), `${NS} ${d1}`);
  });
  await t.step("unchanged images stay prunable", () => {
    const confirmed = confirmPass(first.images, before, new Set(before.keys()));
    assert.deepEqual(confirmed, first.images);
  });
  await t.step("used in between, new ref, or not prunable before", () => {
    const later = plan(snapshot([
      image("a:1", d1),
      image("b:1", d2),
      image("b:2", d2),
      image("c:1", d3),
    ]));
    const partial = new Map(before);
    partial.delete(`${NS} ${d3}`);
    partial.set(`${NS} ${d1}`, "a:1");
    const confirmed = confirmPass(later.images, partial, new Set(before.keys()));
    assert.deepEqual(decisions({ images: confirmed, warnings: [] }), {
      "a:1": ["prune", "prune"],
      "b:1": ["keep", "used-during-double-check"],
      "c:1": ["keep", "used-during-double-check"],
    });
    assert.deepEqual(confirmed[1]!.refs, ["b:1", "b:2"]);
  });
  await t.step("kept images are passed through", () => {
    const kept: ImagePlan = { ...first.images[0]!, decision: "keep", reason: "in-use" };
    // Kept and not prunable in the first pass: its own reason stays.
    assert.deepEqual(confirmPass([kept], new Map(), new Set()), [kept]);
  });
  await t.step("prunableSet() leaves out kept images", () => {
    const kept: ImagePlan = { ...first.images[0]!, decision: "keep", reason: "pinned" };
    assert.deepEqual(prunableSet([kept, first.images[1]!]), new Map([[`${NS} ${d2}`, "b:1"]]));
  });
  await t.step("a namespace does not confirm another namespace's image", () => {
    const other = plan(snapshot([image("a:1", d1)], [], undefined, "default"));
    assert.deepEqual(
      decisions({
        images: confirmPass(other.images, before, new Set(before.keys())),
        warnings: [],
      }),
      { "a:1": ["keep", "used-during-double-check"] },
    );
  });
});

Deno.test("repositoryOf() strips tag and digest", async (t) => {
  const d = digest("a");
  const cases: [string, string | null][] = [
    ["docker.io/library/a:1", "docker.io/library/a"],
    ["localhost:5000/x:1", "localhost:5000/x"],
    ["localhost:5000/x", "localhost:5000/x"],
    [`x@${d}`, "x"],
    [`localhost:5000/x@${d}`, "localhost:5000/x"],
    [d, null],
    ["busybox", "busybox"],
  ];
  for (const [ref, repo] of cases) {
    await t.step(`${ref} → ${repo}`, () => assert.equal(repositoryOf(ref), repo));
  }
});

Deno.test("globToRegExp() matches whole refs with * and ? only", async (t) => {
  const cases: [string, string, boolean][] = [
    ["registry.k8s.io/pause:*", "registry.k8s.io/pause:3.9", true],
    ["registry.k8s.io/pause:*", "registry.k8s.io/pause:", true],
    ["registry.k8s.io/pause:*", "registryXk8s.io/pause:3.9", false],
    ["registry.k8s.io/pause:*", "registry.k8s.io/pause", false],
    ["registry.k8s.io/pause:*", "my.registry.k8s.io/pause:3.9", false],
    ["x:?", "x:1", true],
    ["x:?", "x:10", false],
    ["*", "anything/at:all", true],
    ["a+b", "a+b", true],
    ["a+b", "aab", false],
    ["(a|b)", "(a|b)", true],
    ["(a|b)", "a", false],
    ["[ab]", "[ab]", true],
    ["[ab]", "a", false],
    ["x^$", "x^$", true],
    ["{1}", "{1}", true],
    ["a\\d", "a\\d", true],
    ["a\\d", "a1", false],
    ["x:1", "x:1.0", false],
    ["x:1", "prefix/x:1", false],
  ];
  for (const [glob, ref, matches] of cases) {
    await t.step(`${glob} ${matches ? "matches" : "does not match"} ${ref}`, () => {
      assert.equal(globToRegExp(glob).test(ref), matches);
    });
  }
});

function fixture(path: string): string {
  return Deno.readTextFileSync(new URL(`./testdata/${path}`, import.meta.url));
}

/** A snapshot from captured listings, as snapshotNamespace() builds it. */
function fromFixtures(
  ns: string,
  files: { content: string; images: string; containers?: string },
): NamespaceSnapshot {
  return {
    ns,
    images: parseImageLs(fixture(files.images)),
    content: new Map(parseContentLs(fixture(files.content)).map((b) => [b.digest, b])),
    containers: files.containers ? parseContainerLs(fixture(files.containers)) : [],
  };
}

function summary(p: Plan): [string[], string, string, string[] | undefined][] {
  return p.images.map((i) => [i.refs, i.decision, i.reason, i.containers]);
}

Deno.test("planNamespace() decides the real ctr 1.6 namespace default", async (t) => {
  const app = ["docker.io/library/ctre-app:1.0", "docker.io/library/ctre-app:latest"];
  const old = [
    "docker.io/library/ctre-old:0.1",
    "sha256:738f35303f93ad3e44eed792c9d38c11c5bbfa48eea5136fc4f13289f172e034",
  ];
  const pinned = ["registry.example.com/team/ctre-pinned:3.9"];
  const files = {
    content: "ctr-1.6/content_ls.txt",
    images: "ctr-1.6/image_ls.txt",
    containers: "ctr-1.6/container_ls.txt",
  };
  await t.step("with its running, created and exited containers: all in use", () => {
    const p = plan(fromFixtures("default", files));
    assert.deepEqual(summary(p), [
      [app, "keep", "in-use", ["ctre-running"]],
      [old, "keep", "in-use", ["ctre-exited"]],
      [pinned, "keep", "in-use", ["ctre-created"]],
    ]);
    assert.deepEqual(p.warnings, []);
  });
  await t.step("without containers: old goes with its sha256: ref, young and pinned stay", () => {
    const { containers: _, ...noContainers } = files;
    const p = plan(fromFixtures("default", noContainers));
    assert.deepEqual(summary(p), [
      [app, "keep", "too-young", undefined],
      [old, "prune", "prune", undefined],
      [pinned, "keep", "pinned", undefined],
    ]);
    assert.equal(p.images[1]!.ageText, "3 weeks");
    assert.equal(p.images[1]!.size, 1_992_294);
  });
  await t.step("k8s.io: the pause image is pinned with its sha256: ref", () => {
    const p = plan(
      fromFixtures("k8s.io", {
        content: "ctr-1.6/k8s_content_ls.txt",
        images: "ctr-1.6/k8s_image_ls.txt",
      }),
      [],
      { minAge: 0 },
    );
    assert.deepEqual(summary(p), [[
      [
        "registry.k8s.io/pause:3.9",
        "sha256:57ac343d48d3aec0f0efb4e34f7bdcac36a82bc6cbb418c19a06a28225e08fef",
      ],
      "keep",
      "pinned",
      undefined,
    ]]);
  });
});

Deno.test("planNamespace() decides the 1.7/2.x namespace k8s.io", async (t) => {
  const nginxIndex = "sha256:e9f6d4cab074c87994dedc34339a54f64df45789148175b433f5d4fe43748810";
  const bigManifest = "sha256:0985a3d7909712261658eb8ee723416dd0dc8cf5dc15b6dc1de3dcc0a077d5bc";
  const nginx = [
    "docker.io/library/nginx:1.27",
    `docker.io/library/nginx@${nginxIndex}`,
    "sha256:b133d84ee328bce8387ff008cba3981cf7e84e3df8738663b462570e613c27ae",
  ];
  const big = [
    "quay.io/example/big:1",
    "registry.example.com/mirror/big:1",
    "sha256:7d5b5cb2a92e320cc657c47eb10dd61e184e8c1d66f32c3adf80e23abc6a6685",
  ];
  const k3s = [
    "docker.io/rancher/mirrored-pause:3.6",
    "sha256:0ddfc4adfea4f4f7a0802f50de8540d83c701bdbe01ade9012371b50d7e5a66d",
  ];
  const tool = [
    "ghcr.io/example/tool:2.0",
    "sha256:a63f1126086c4a7e2c3120ec7aecac7b2d6cd13f2c5f4decda15ac7da26c8310",
  ];
  const pause = [
    "registry.k8s.io/pause:3.10",
    "sha256:e34d466541fc1fe07ce05cfcc45f7c9c6ffca2767c2e3afc8fe57c187dfcb86c",
  ];
  const files = { content: "ctr-2.x/content_ls.txt", images: "ctr-2.x/image_ls.txt" };
  await t.step("with its containers", () => {
    const p = plan(fromFixtures(NS, { ...files, containers: "ctr-2.x/container_ls.txt" }));
    assert.deepEqual(summary(p), [
      [["docker.io/example/archive:2023"], "keep", "too-young", undefined],
      [nginx, "keep", "in-use", [
        "8b7c6d5e4f3a2b1c8b7c6d5e4f3a2b1c8b7c6d5e4f3a2b1c8b7c6d5e4f3a2b1c",
      ]],
      [k3s, "keep", "pinned", undefined],
      [tool, "keep", "too-young", undefined],
      [["localhost:5000/scratch:empty"], "keep", "too-young", undefined],
      [big, "keep", "in-use", [
        "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00",
      ]],
      [pause, "keep", "in-use", [
        "3f2a9c0d7e6b5a4c3f2a9c0d7e6b5a4c3f2a9c0d7e6b5a4c3f2a9c0d7e6b5a4c",
      ]],
    ]);
    assert.equal(p.images[0]!.ageSeconds, null, "archive's target has no content blob");
    assert.deepEqual(p.warnings, [
      `Dupe refs found for ns ${NS} image ${bigManifest}, keeping all: ${big.join(" + ")}`,
    ]);
  });
  await t.step("without containers, a recorded start keeps nginx", () => {
    const p = plan(fromFixtures(NS, files), [[NS, nginx[2]!, { start: NOW - DAY, stop: null }]]);
    assert.deepEqual(p.images[1]!.reason, "recently-used");
    assert.deepEqual(p.images[5]!.reason, "too-young", "big's content is About a minute old");
    assert.deepEqual(p.images[6]!.reason, "pinned");
  });
  await t.step("without containers or uses, nginx (2 years) goes with all three refs", () => {
    const p = plan(fromFixtures(NS, files));
    assert.deepEqual(
      p.images.filter((i) => i.decision === "prune").map((i) => [i.refs, i.size]),
      [[nginx, 70_988_595]],
    );
  });
});
