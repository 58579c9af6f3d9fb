import assert from "node:assert/strict";
import { ParseError } from "../lib/core/errors.ts";
import {
  parseContainerInfo,
  parseContainerLs,
  parseContentLs,
  parseDigests,
  parseImageLs,
  parseNamespaces,
  parseTaskLs,
} from "../lib/ctr/listings.ts";
import type { ContainerInfo, ContentBlob, ImageRow } from "../lib/core/containerd.ts";

function fixture(path: string): string {
  return Deno.readTextFileSync(new URL(`./testdata/${path}`, import.meta.url));
}

function labels(o: Record<string, string> = {}): Map<string, string> {
  return new Map(Object.entries(o));
}

const DAY = 86400;
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const INDEX = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const RUNC = "io.containerd.runc.v2";

/** Digests of the real ctr 1.6.20 captures in testdata/ctr-1.6. */
const R = {
  appConfig: "sha256:01d92a740bca43952a3d1df4594592389b4499c73372009037894ea58ba0c23b",
  oldManifest: "sha256:045ca9bd63574d4800f91eedfedff7b8dd4769ecf2d0e831c97dfceb15685e23",
  oldLayer: "sha256:0c1447e2240bf6585367cf592d2578498cdc9922e90b4881cb06b7d386079e29",
  appManifest: "sha256:22a9916a9f0fe180acad1fa284f36bc10a47ff6c8d57f8676bdabed80bc9a919",
  oldConfig: "sha256:738f35303f93ad3e44eed792c9d38c11c5bbfa48eea5136fc4f13289f172e034",
  pinnedManifest: "sha256:92bd6a49d6470d77825211a8ab844fd8f59df12b47cbaabb890e421ef898acc5",
  pinnedConfig: "sha256:a84ed93b06b37d65d1995722b045fbeeb374bab3fa7c75eb372b40d8de0d0c72",
  pinnedLayer: "sha256:ccd0efa530096c1f7216766d0d02423f3750104af16de058941e7dab489d4b05",
  appLayer: "sha256:f5049318f3184e1f453dca57d8abfc35d535eda0279803b2f47dabc7802e27a8",
  pauseConfig: "sha256:57ac343d48d3aec0f0efb4e34f7bdcac36a82bc6cbb418c19a06a28225e08fef",
  pauseManifest: "sha256:ad2613cc2c3053b67dcb64bd43cdd4d443f2323178341a35a568b95448e91469",
  pauseLayer: "sha256:e2ce8326a514b658a32d4f4dd998528fd57a1e26e246c14a4222398129750e71",
};

/** Digests of the hand-made 1.7/2.x outputs in testdata/ctr-2.x. */
const H = {
  bigManifest: "sha256:0985a3d7909712261658eb8ee723416dd0dc8cf5dc15b6dc1de3dcc0a077d5bc",
  scratchManifest: "sha256:0d6dbc8f013c1d625889afa8868e54a031f4259d1457f9b4c229d46267742364",
  k3sPauseConfig: "sha256:0ddfc4adfea4f4f7a0802f50de8540d83c701bdbe01ade9012371b50d7e5a66d",
  toolIndex: "sha256:54f7322a7c7a602c22b126aab14292add45a52d6822cf18a76e3f23eca3a35c6",
  bigConfig: "sha256:7d5b5cb2a92e320cc657c47eb10dd61e184e8c1d66f32c3adf80e23abc6a6685",
  k3sPauseManifest: "sha256:8a8e94e7cd347037549b26f4a5ee14a876b41d62d497ac744959308799a04b29",
  archiveManifest: "sha256:93d4bc2adc3cc20dbc37213c016ebcc16e3cbd98e4a79144339224543184074d",
  toolConfig: "sha256:a63f1126086c4a7e2c3120ec7aecac7b2d6cd13f2c5f4decda15ac7da26c8310",
  nginxManifest: "sha256:a92fcc61820c6c074c00438cf96acc29c884fa9864795ac4eb5da496d704d4c4",
  nginxConfig: "sha256:b133d84ee328bce8387ff008cba3981cf7e84e3df8738663b462570e613c27ae",
  pauseManifest: "sha256:baa3344c7c8a3f12f2cccd3a970de257c56a815a5204711a761442f04fe5c7ca",
  bigLayer: "sha256:bd2cb462e0d4925274247394344e34512454960ff4792314bc07b4a01fd4d825",
  pauseLayer: "sha256:c0769138a9ec6e41acfc5e6cc11c2cd666ec2dbaac60e36c13bd2c12f3ec5d57",
  nginxLayer: "sha256:cf5cfafac2a25e3b28156038bb0808b66f34c73154cf98f4b67814bf38b4e9fc",
  pauseIndex: "sha256:db106d9534981db4e834b6f8730b63060357ddee3b27fcea11fbd2ce349a60e5",
  pauseConfig: "sha256:e34d466541fc1fe07ce05cfcc45f7c9c6ffca2767c2e3afc8fe57c187dfcb86c",
  empty: "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  nginxIndex: "sha256:e9f6d4cab074c87994dedc34339a54f64df45789148175b433f5d4fe43748810",
};

const SRC_DOCKER = "containerd.io/distribution.source.docker.io";
const SRC_K8S = "containerd.io/distribution.source.registry.k8s.io";
const CONFIG = "containerd.io/gc.ref.content.config";
const LAYER0 = "containerd.io/gc.ref.content.l.0";
const MANIFEST0 = "containerd.io/gc.ref.content.m.0";
const SNAPSHOT = "containerd.io/gc.ref.snapshot.overlayfs";
const UNCOMPRESSED = "containerd.io/uncompressed";

Deno.test("parseNamespaces() reads ctr namespace ls -q", async (t) => {
  await t.step("real 1.6", () => {
    assert.deepEqual(parseNamespaces(fixture("ctr-1.6/namespace_ls_q.txt")), [
      "default",
      "k8s.io",
      "moby",
    ]);
  });
  await t.step("2.x", () => {
    assert.deepEqual(parseNamespaces(fixture("ctr-2.x/namespace_ls_q.txt")), [
      "buildkit",
      "default",
      "k8s.io",
      "moby",
    ]);
  });
  await t.step("blank lines and surrounding spaces ignored", () => {
    assert.deepEqual(parseNamespaces("\n default \n\nk8s.io\r\n"), ["default", "k8s.io"]);
    assert.deepEqual(parseNamespaces(""), []);
  });
  await t.step("the table form or other junk is rejected", () => {
    assert.throws(() => parseNamespaces(fixture("ctr-1.6/namespace_ls.txt")), ParseError);
    assert.throws(() => parseNamespaces("ctr: failed to dial"), /Unexpected namespace name/);
    assert.throws(() => parseNamespaces("-n"), ParseError);
  });
});

Deno.test("parseDigests() reads ctr content ls -q", () => {
  const digests = parseDigests(fixture("ctr-1.6/content_ls_q.txt"));
  assert.deepEqual(digests, [
    R.appConfig,
    R.oldManifest,
    R.oldLayer,
    R.appManifest,
    R.oldConfig,
    R.pinnedManifest,
    R.pinnedConfig,
    R.pinnedLayer,
    R.appLayer,
  ]);
});

Deno.test("parseContentLs() reads real ctr 1.6 content ls completely", async (t) => {
  const WEEKS3 = 21 * DAY - 1800;
  await t.step("namespace default", () => {
    const expected: ContentBlob[] = [
      {
        digest: R.appConfig,
        size: 319,
        ageSeconds: 1,
        ageText: "1 second",
        labels: labels({ [SNAPSHOT]: R.appLayer }),
      },
      {
        digest: R.oldManifest,
        size: 400,
        ageSeconds: WEEKS3,
        ageText: "3 weeks",
        labels: labels({ [LAYER0]: R.oldLayer, [CONFIG]: R.oldConfig }),
      },
      {
        digest: R.oldLayer,
        size: 1_987_000,
        ageSeconds: WEEKS3,
        ageText: "3 weeks",
        labels: labels({ [UNCOMPRESSED]: R.oldLayer }),
      },
      {
        digest: R.appManifest,
        size: 400,
        ageSeconds: 1,
        ageText: "1 second",
        labels: labels({ [LAYER0]: R.appLayer, [CONFIG]: R.appConfig }),
      },
      {
        digest: R.oldConfig,
        size: 319,
        ageSeconds: WEEKS3,
        ageText: "3 weeks",
        labels: labels({ [SNAPSHOT]: R.oldLayer }),
      },
      {
        digest: R.pinnedManifest,
        size: 400,
        ageSeconds: 1,
        ageText: "1 second",
        labels: labels({ [LAYER0]: R.pinnedLayer, [CONFIG]: R.pinnedConfig }),
      },
      {
        digest: R.pinnedConfig,
        size: 322,
        ageSeconds: 1,
        ageText: "1 second",
        labels: labels({ [SNAPSHOT]: R.pinnedLayer }),
      },
      {
        digest: R.pinnedLayer,
        size: 1_987_000,
        ageSeconds: 1,
        ageText: "1 second",
        labels: labels({ [UNCOMPRESSED]: R.pinnedLayer }),
      },
      {
        digest: R.appLayer,
        size: 1_987_000,
        ageSeconds: 1,
        ageText: "1 second",
        labels: labels({
          [UNCOMPRESSED]: R.appLayer,
          [SRC_DOCKER]: "library/ctre-app,library/ctre-app-mirror",
        }),
      },
    ];
    assert.deepEqual(parseContentLs(fixture("ctr-1.6/content_ls.txt")), expected);
  });
  await t.step("namespace k8s.io", () => {
    assert.deepEqual(parseContentLs(fixture("ctr-1.6/k8s_content_ls.txt")), [
      {
        digest: R.pauseConfig,
        size: 321,
        ageSeconds: 1,
        ageText: "1 second",
        labels: labels({ [SNAPSHOT]: R.pauseLayer }),
      },
      {
        digest: R.pauseManifest,
        size: 400,
        ageSeconds: 1,
        ageText: "1 second",
        labels: labels({ [CONFIG]: R.pauseConfig, [LAYER0]: R.pauseLayer }),
      },
      {
        digest: R.pauseLayer,
        size: 1_987_000,
        ageSeconds: 1,
        ageText: "1 second",
        labels: labels({ [UNCOMPRESSED]: R.pauseLayer }),
      },
    ]);
  });
});

Deno.test("parseContentLs() reads the 1.7/2.x content ls completely", () => {
  const expected: ContentBlob[] = [
    {
      digest: H.bigManifest,
      size: 1_200_000_000_000,
      ageSeconds: 60,
      ageText: "About a minute",
      labels: labels({ [CONFIG]: H.bigConfig, [LAYER0]: H.bigLayer }),
    },
    {
      digest: H.scratchManifest,
      size: 322,
      ageSeconds: 2 * DAY - 1800,
      ageText: "2 days",
      labels: labels(),
    },
    {
      digest: H.k3sPauseConfig,
      size: 1465,
      ageSeconds: 56 * DAY - 1800,
      ageText: "8 weeks",
      labels: labels({ [SRC_DOCKER]: "rancher/mirrored-pause" }),
    },
    {
      digest: H.toolIndex,
      size: 1_000_000,
      ageSeconds: 0,
      ageText: "Less than a second",
      labels: labels(),
    },
    {
      digest: H.bigConfig,
      size: 7_500_000_000,
      ageSeconds: 59,
      ageText: "59 seconds",
      labels: labels(),
    },
    {
      digest: H.k3sPauseManifest,
      size: 525,
      ageSeconds: 56 * DAY - 1800,
      ageText: "8 weeks",
      labels: labels({ [SRC_DOCKER]: "rancher/mirrored-pause", [CONFIG]: H.k3sPauseConfig }),
    },
    {
      digest: H.toolConfig,
      size: 190,
      ageSeconds: 1,
      ageText: "1 second",
      labels: labels(),
    },
    {
      digest: H.nginxManifest,
      size: 1234,
      ageSeconds: 150 * DAY - 1800,
      ageText: "5 months",
      labels: labels({
        [SRC_DOCKER]: "library/nginx",
        [CONFIG]: H.nginxConfig,
        [LAYER0]: H.nginxLayer,
      }),
    },
    {
      digest: H.nginxConfig,
      size: 12_350,
      ageSeconds: 3600,
      ageText: "About an hour",
      labels: labels({ [SRC_DOCKER]: "library/nginx" }),
    },
    {
      digest: H.pauseManifest,
      size: 527,
      ageSeconds: 21 * DAY - 1800,
      ageText: "3 weeks",
      labels: labels({ [SRC_K8S]: "pause", [CONFIG]: H.pauseConfig, [LAYER0]: H.pauseLayer }),
    },
    {
      digest: H.bigLayer,
      size: 0,
      ageSeconds: 13 * DAY - 1800,
      ageText: "13 days",
      labels: labels(),
    },
    {
      digest: H.pauseLayer,
      size: 320_400,
      ageSeconds: 21 * DAY - 1800,
      ageText: "3 weeks",
      labels: labels({ [SRC_K8S]: "pause", [UNCOMPRESSED]: H.pauseLayer }),
    },
    {
      digest: H.nginxLayer,
      size: 123_500_000,
      ageSeconds: 2 * 3600 - 1800,
      ageText: "2 hours",
      labels: labels({ [SRC_DOCKER]: "library/a,library/b", [UNCOMPRESSED]: H.nginxLayer }),
    },
    {
      digest: H.pauseIndex,
      size: 2174,
      ageSeconds: 21 * DAY - 1800,
      ageText: "3 weeks",
      labels: labels({ [SRC_K8S]: "pause", [MANIFEST0]: H.pauseManifest }),
    },
    {
      digest: H.pauseConfig,
      size: 1000,
      ageSeconds: 21 * DAY - 1800,
      ageText: "3 weeks",
      labels: labels({ [SRC_K8S]: "pause", [SNAPSHOT]: H.pauseLayer }),
    },
    {
      digest: H.empty,
      size: 0,
      ageSeconds: 120,
      ageText: "2 minutes",
      labels: labels(),
    },
    {
      digest: H.nginxIndex,
      size: 10_230,
      ageSeconds: 2 * 365 * DAY,
      ageText: "2 years",
      labels: labels({ [SRC_DOCKER]: "library/nginx", [MANIFEST0]: H.nginxManifest }),
    },
  ];
  assert.deepEqual(parseContentLs(fixture("ctr-2.x/content_ls.txt")), expected);
  assert.deepEqual(
    parseContentLs(fixture("ctr-2.x/content_ls.txt")).map((b) => b.digest),
    parseDigests(fixture("ctr-2.x/content_ls_q.txt")),
  );
});

Deno.test("parseContentLs() reads what the original ctre crashed on or got wrong", async (t) => {
  const header = "DIGEST\t\t\t\t\t\t\t\t\tSIZE\tAGE\t\t\tLABELS\n";
  const row = (size: string, age: string, labels = "-") =>
    `${H.empty}\t${size}\t${age}\t${"\t".repeat(Math.ceil((24 - age.length) / 8) - 1)}${labels}\n`;
  const one = (size: string, age: string, labelCell = "-") =>
    parseContentLs(header + row(size, age, labelCell))[0]!;
  await t.step("AGE Less than a second", () => {
    assert.equal(one("0B", "Less than a second").ageSeconds, 0);
  });
  await t.step("AGE 1 second", () => assert.equal(one("0B", "1 second").ageSeconds, 1));
  await t.step("decimal kB is 1000", () => {
    assert.equal(one("1kB", "2 days").size, 1000);
    assert.equal(one("1.987MB", "2 days").size, 1_987_000);
  });
  await t.step("TB", () => assert.equal(one("1.2TB", "2 days").size, 1.2e12));
  await t.step("a label value with commas", () => {
    assert.deepEqual(
      one("0B", "2 days", `${SRC_DOCKER}=library/a,library/b`).labels,
      labels({ [SRC_DOCKER]: "library/a,library/b" }),
    );
  });
});

Deno.test("parseContentLs() throws ParseError naming the line", async (t) => {
  const header = "DIGEST\tSIZE\tAGE\tLABELS\n";
  await t.step("a bad digest", () => {
    assert.throws(
      () => parseContentLs(`${header}sha256:abc\t1kB\t2 days\t-\n`),
      /Cannot parse line 2 of ctr content ls: bad digest "sha256:abc"/,
    );
  });
  await t.step("an unknown age", () => {
    assert.throws(() => parseContentLs(`${header}${H.empty}\t1kB\t2 days ago\t-\n`), ParseError);
  });
  await t.step("an unknown size", () => {
    assert.throws(() => parseContentLs(`${header}${H.empty}\t1 kilobyte\t2 days\t-\n`), ParseError);
  });
  await t.step("the image ls table instead", () => {
    assert.throws(() => parseContentLs(fixture("ctr-1.6/image_ls.txt")), /Unexpected header/);
  });
});

function img(
  ref: string,
  type: string,
  digest: string,
  size: number,
  platforms: string,
  l: Record<string, string> = {},
): ImageRow {
  return { ref, type, digest, size, platforms, labels: labels(l) };
}

const MIB_1_9 = 1_992_294;

Deno.test("parseImageLs() reads real ctr 1.6 image ls completely", async (t) => {
  await t.step("namespace default", () => {
    assert.deepEqual(parseImageLs(fixture("ctr-1.6/image_ls.txt")), [
      img("docker.io/library/ctre-app:1.0", MANIFEST, R.appManifest, MIB_1_9, "linux/amd64"),
      img("docker.io/library/ctre-app:latest", MANIFEST, R.appManifest, MIB_1_9, "linux/amd64"),
      img("docker.io/library/ctre-old:0.1", MANIFEST, R.oldManifest, MIB_1_9, "linux/amd64"),
      img(
        "registry.example.com/team/ctre-pinned:3.9",
        MANIFEST,
        R.pinnedManifest,
        MIB_1_9,
        "linux/amd64",
        { "io.cri-containerd.pinned": "pinned" },
      ),
      img(R.oldConfig, MANIFEST, R.oldManifest, MIB_1_9, "linux/amd64"),
    ]);
  });
  await t.step("namespace k8s.io, with the CRI's sha256: ref", () => {
    assert.deepEqual(parseImageLs(fixture("ctr-1.6/k8s_image_ls.txt")), [
      img("registry.k8s.io/pause:3.9", MANIFEST, R.pauseManifest, MIB_1_9, "linux/amd64", {
        "io.cri-containerd.image": "managed",
        "io.cri-containerd.pinned": "pinned",
      }),
      img(R.pauseConfig, MANIFEST, R.pauseManifest, MIB_1_9, "linux/amd64", {
        "io.cri-containerd.image": "managed",
      }),
    ]);
  });
  await t.step("the same refs as image ls -q", () => {
    assert.deepEqual(
      parseImageLs(fixture("ctr-1.6/image_ls.txt")).map((i) => i.ref),
      fixture("ctr-1.6/image_ls_q.txt").trimEnd().split("\n"),
    );
  });
});

Deno.test("parseImageLs() reads the 1.7/2.x image ls completely", () => {
  const managed = { "io.cri-containerd.image": "managed" };
  const pinned = { ...managed, "io.cri-containerd.pinned": "pinned" };
  const k3s = { "io.cattle.k3s.pinned": "pinned", ...managed };
  const TIB_2_5 = 2_748_779_069_440;
  const GIB_1_2 = 1_288_490_189;
  const MIB_67_7 = 70_988_595;
  const KIB_1007_9 = 1_032_090;
  const KIB_311_6 = 319_078;
  const AMD = "linux/amd64";
  const BOTH = "linux/amd64,linux/arm64";
  const expected: ImageRow[] = [
    img("docker.io/example/archive:2023", MANIFEST, H.archiveManifest, TIB_2_5, AMD),
    img("docker.io/library/nginx:1.27", DOCKER_LIST, H.nginxIndex, MIB_67_7, AMD, managed),
    img(
      `docker.io/library/nginx@${H.nginxIndex}`,
      DOCKER_LIST,
      H.nginxIndex,
      MIB_67_7,
      AMD,
      managed,
    ),
    img(
      "docker.io/rancher/mirrored-pause:3.6",
      DOCKER_MANIFEST,
      H.k3sPauseManifest,
      KIB_1007_9,
      AMD,
      k3s,
    ),
    img("ghcr.io/example/tool:2.0", INDEX, H.toolIndex, 0, "linux/arm64", managed),
    img("localhost:5000/scratch:empty", MANIFEST, H.scratchManifest, 512, AMD),
    img("quay.io/example/big:1", MANIFEST, H.bigManifest, GIB_1_2, AMD, managed),
    img("registry.example.com/mirror/big:1", MANIFEST, H.bigManifest, GIB_1_2, AMD, managed),
    img("registry.k8s.io/pause:3.10", INDEX, H.pauseIndex, KIB_311_6, BOTH, pinned),
    img(H.k3sPauseConfig, DOCKER_MANIFEST, H.k3sPauseManifest, KIB_1007_9, AMD, k3s),
    img(H.bigConfig, MANIFEST, H.bigManifest, GIB_1_2, AMD, managed),
    img(H.toolConfig, INDEX, H.toolIndex, 0, "linux/arm64", managed),
    img(H.nginxConfig, DOCKER_LIST, H.nginxIndex, MIB_67_7, AMD, managed),
    img(H.pauseConfig, INDEX, H.pauseIndex, KIB_311_6, BOTH, pinned),
  ];
  assert.deepEqual(parseImageLs(fixture("ctr-2.x/image_ls.txt")), expected);
  assert.deepEqual(
    expected.map((i) => i.ref),
    fixture("ctr-2.x/image_ls_q.txt").trimEnd().split("\n"),
  );
});

Deno.test("parseImageLs() reads the sizes the original ctre crashed on or got wrong", async (t) => {
  const header = "REF  TYPE  DIGEST" + " ".repeat(66) + "SIZE       PLATFORMS    LABELS    \n";
  const one = (size: string) => {
    const row = `x:1  t     ${H.empty} ${size.padEnd(11)}linux/amd64  -         \n`;
    return parseImageLs(header + row)[0]!.size;
  };
  const cases: [string, number][] = [
    ["0.0 B", 0],
    ["512.0 B", 512],
    ["1.0 KiB", 1024],
    ["2.5 TiB", 2_748_779_069_440],
  ];
  for (const [size, bytes] of cases) {
    await t.step(`"${size}" → ${bytes}`, () => assert.equal(one(size), bytes));
  }
});

Deno.test("parseImageLs() throws ParseError naming the line", async (t) => {
  const header = "REF    TYPE    DIGEST    SIZE       PLATFORMS    LABELS    \n";
  await t.step("a bad digest", () => {
    assert.throws(
      () => parseImageLs(`${header}x:1    t       sha256:x  1.0 KiB    linux/amd64  -         \n`),
      /Cannot parse line 2 of ctr image ls: bad digest "sha256:x"/,
    );
  });
  await t.step("the content ls table instead", () => {
    assert.throws(() => parseImageLs(fixture("ctr-1.6/content_ls.txt")), /Unexpected header/);
  });
});

Deno.test("parseContainerLs() reads ctr container ls", async (t) => {
  await t.step("real 1.6", () => {
    assert.deepEqual(parseContainerLs(fixture("ctr-1.6/container_ls.txt")), [
      { id: "ctre-created", image: "registry.example.com/team/ctre-pinned:3.9", runtime: RUNC },
      { id: "ctre-exited", image: "docker.io/library/ctre-old:0.1", runtime: RUNC },
      { id: "ctre-running", image: "docker.io/library/ctre-app:1.0", runtime: RUNC },
    ]);
  });
  await t.step("real 1.6, a moby container without image", () => {
    assert.deepEqual(parseContainerLs(fixture("ctr-1.6/moby_container_ls.txt")), [
      {
        id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        image: null,
        runtime: RUNC,
      },
    ]);
  });
  await t.step("2.x, with a sha256: image and one without image", () => {
    assert.deepEqual(parseContainerLs(fixture("ctr-2.x/container_ls.txt")), [
      {
        id: "3f2a9c0d7e6b5a4c3f2a9c0d7e6b5a4c3f2a9c0d7e6b5a4c3f2a9c0d7e6b5a4c",
        image: "registry.k8s.io/pause:3.10",
        runtime: RUNC,
      },
      {
        id: "8b7c6d5e4f3a2b1c8b7c6d5e4f3a2b1c8b7c6d5e4f3a2b1c8b7c6d5e4f3a2b1c",
        image: "docker.io/library/nginx:1.27",
        runtime: RUNC,
      },
      {
        id: "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00",
        image: H.bigConfig,
        runtime: RUNC,
      },
      { id: "rootfs-only", image: null, runtime: RUNC },
    ]);
  });
  await t.step("no containers", () => {
    assert.deepEqual(parseContainerLs("CONTAINER    IMAGE    RUNTIME    \n"), []);
  });
  await t.step("another table", () => {
    assert.throws(() => parseContainerLs(fixture("ctr-1.6/task_ls.txt")), ParseError);
  });
});

Deno.test("parseTaskLs() reads ctr task ls", async (t) => {
  await t.step("real 1.6", () => {
    assert.deepEqual(parseTaskLs(fixture("ctr-1.6/task_ls.txt")), [
      { id: "ctre-running", pid: 16040, status: "RUNNING" },
      { id: "ctre-exited", pid: 16095, status: "STOPPED" },
    ]);
  });
  await t.step("2.x", () => {
    assert.deepEqual(parseTaskLs(fixture("ctr-2.x/task_ls.txt")), [
      {
        id: "3f2a9c0d7e6b5a4c3f2a9c0d7e6b5a4c3f2a9c0d7e6b5a4c3f2a9c0d7e6b5a4c",
        pid: 2101,
        status: "RUNNING",
      },
      {
        id: "8b7c6d5e4f3a2b1c8b7c6d5e4f3a2b1c8b7c6d5e4f3a2b1c8b7c6d5e4f3a2b1c",
        pid: 2188,
        status: "PAUSED",
      },
      {
        id: "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00",
        pid: 0,
        status: "STOPPED",
      },
      { id: "rootfs-only", pid: 31337, status: "CREATED" },
    ]);
  });
});

Deno.test("parseContainerInfo() reads ctr containers info", async (t) => {
  const cases: [string, ContainerInfo][] = [
    ["ctr-1.6/containers_info.txt", {
      id: "ctre-running",
      image: "docker.io/library/ctre-app:1.0",
      labels: { "io.containerd.image.config.stop-signal": "SIGTERM" },
      createdAt: "2026-11-27T21:52:29.908516358Z",
      updatedAt: "2026-11-27T21:52:29.908516358Z",
      snapshotKey: "ctre-running",
      snapshotter: "overlayfs",
      criImageRef: null,
    }],
    ["ctr-1.6/moby_containers_info.txt", {
      id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
      image: "",
      labels: {},
      createdAt: "2026-11-27T21:52:29.852160153Z",
      updatedAt: "2026-11-27T21:52:29.852160153Z",
      snapshotKey: "",
      snapshotter: "",
      criImageRef: null,
    }],
    ["ctr-2.x/containers_info.txt", {
      id: "8b7c6d5e4f3a2b1c8b7c6d5e4f3a2b1c8b7c6d5e4f3a2b1c8b7c6d5e4f3a2b1c",
      image: "docker.io/library/nginx:1.27",
      labels: {
        "io.cri-containerd.kind": "container",
        "io.kubernetes.container.name": "nginx",
        "io.kubernetes.pod.name": "web-7d9f8b6c5-x2k4p",
        "io.kubernetes.pod.namespace": "default",
        "io.kubernetes.pod.uid": "5f0e6c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b",
      },
      createdAt: "2026-11-27T17:12:41Z",
      updatedAt: "2026-11-27T17:12:41.520446113Z",
      snapshotKey: "8b7c6d5e4f3a2b1c8b7c6d5e4f3a2b1c8b7c6d5e4f3a2b1c8b7c6d5e4f3a2b1c",
      snapshotter: "overlayfs",
      criImageRef: null,
    }],
    ["ctr-2.x/sandbox_info.txt", {
      id: "3f2a9c0d7e6b5a4c3f2a9c0d7e6b5a4c3f2a9c0d7e6b5a4c3f2a9c0d7e6b5a4c",
      image: "registry.k8s.io/pause:3.10",
      labels: {
        "io.cri-containerd.kind": "sandbox",
        "io.kubernetes.pod.name": "web-7d9f8b6c5-x2k4p",
        "io.kubernetes.pod.namespace": "default",
        "io.kubernetes.pod.uid": "5f0e6c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b",
      },
      createdAt: "2026-11-27T17:12:41Z",
      updatedAt: "2026-11-27T17:12:41.520446113Z",
      snapshotKey: "3f2a9c0d7e6b5a4c3f2a9c0d7e6b5a4c3f2a9c0d7e6b5a4c3f2a9c0d7e6b5a4c",
      snapshotter: "overlayfs",
      criImageRef: null,
    }],
    ["ctr-2.x/rootfs_only_info.txt", {
      id: "rootfs-only",
      image: "",
      labels: {},
      createdAt: "2026-11-27T17:12:41.000000001Z",
      updatedAt: "2026-11-27T17:12:41.000000001Z",
      snapshotKey: "",
      snapshotter: "",
      criImageRef: null,
    }],
  ];
  for (const [path, expected] of cases) {
    await t.step(path, () => assert.deepEqual(parseContainerInfo(fixture(path)), expected));
  }
});

Deno.test("parseContainerInfo() throws ParseError for anything but a container", async (t) => {
  const bad: [string, RegExp][] = [
    ["", /as JSON/],
    ['ctr: container "x" in namespace "default": not found', /as JSON/],
    ["null", /no "ID"/],
    ["[]", /no "ID"/],
    ['{"Image":"x:1"}', /no "ID"/],
    ['{"ID":42}', /no "ID"/],
  ];
  for (const [text, message] of bad) {
    await t.step(JSON.stringify(text), () => {
      assert.throws(() => parseContainerInfo(text), (e: unknown) => {
        assert.ok(e instanceof ParseError);
        assert.match(e.message, message);
        return true;
      });
    });
  }
});
