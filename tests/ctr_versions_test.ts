/**
 * ctre's parsers and error recognition against the REAL ctr output of every containerd version
 * the tests run on (tests/testdata/ctr-<minor>/, captured by tests/support/capture_fixtures.ts
 * from the same scenario). One table, one test per version: a wrong fixture of one version fails
 * only that version's test. Expected values come from the scenario itself (the offline images'
 * digests and sizes from tests/support/oci_image.ts), not from the fixtures.
 */
import assert from "node:assert/strict";
import { failure } from "../lib/ctr/runner.ts";
import { field, parseEventLine, payloadTime } from "../lib/ctr/events.ts";
import {
  parseContainerInfo,
  parseContainerLs,
  parseContentLs,
  parseDigests,
  parseImageLs,
  parseNamespaces,
  parseTaskLs,
} from "../lib/ctr/listings.ts";
import { readRemoval } from "../lib/ctr/image_removal.ts";
import {
  buildOciImage,
  hostArch,
  MEDIA_TYPE_MANIFEST,
  type OciImage,
} from "./support/oci_image.ts";

/** Captured versions: fixture dir suffix → the containerd release it came from. */
const VERSIONS: [minor: string, release: string][] = [
  ["1.6", "1.6.20"],
  ["1.7", "1.7.24"],
  ["2.1", "2.1.9"],
];

// The scenario of capture_fixtures.ts.
const APP = "docker.io/library/ctre-app:1.0";
const APP_LATEST = "docker.io/library/ctre-app:latest";
const PINNED = "registry.example.com/team/ctre-pinned:3.9";
const OLD = "docker.io/library/ctre-old:0.1";
const MISSING = "docker.io/library/ctre-missing:1";
const PAUSE = "registry.k8s.io/pause:3.9";
const EVENTS_IMAGE = "docker.io/library/ctre-events:1";
const MOBY_ID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const HINT = "(is containerd running, and is --address or CONTAINERD_ADDRESS right?)";

const [app, pinned, old, pause] = await Promise.all([
  buildOciImage(APP, "app"),
  buildOciImage(PINNED, "pinned"),
  buildOciImage(OLD, "old"),
  buildOciImage(PAUSE, "pause"),
]);

function read(minor: string, name: string): string {
  return Deno.readTextFileSync(new URL(`./testdata/ctr-${minor}/${name}`, import.meta.url));
}

function blobsOf(image: OciImage): { digest: string; size: number }[] {
  return [image.manifest, image.config, image.layer].map((b) => ({
    digest: b.digest,
    size: b.size,
  }));
}

const sorted = (xs: string[]) => [...xs].sort();

/** The content ls rows of `images` as [digest, size], sorted by digest. */
function expectedBlobs(images: OciImage[]): [string, number][] {
  return images.flatMap(blobsOf).map((b): [string, number] => [b.digest, b.size]).sort((a, b) =>
    a[0].localeCompare(b[0])
  );
}

for (const [minor, release] of VERSIONS) {
  Deno.test(`ctr ${minor} (containerd ${release}, real capture): parsers and error texts`, async (t) => {
    await t.step("VERSION is the release the tests run", () => {
      assert.match(read(minor, "VERSION"), new RegExp(` v?${release.replaceAll(".", "\\.")}[~+ ]`));
    });

    await t.step("namespace ls -q", () => {
      assert.deepEqual(parseNamespaces(read(minor, "namespace_ls_q.txt")), [
        "default",
        "k8s.io",
        "moby",
      ]);
    });

    await t.step("content ls: digests, sizes, ages, labels (a value with commas)", () => {
      const blobs = parseContentLs(read(minor, "content_ls.txt"));
      const want = expectedBlobs([app, pinned, old]);
      assert.deepEqual(blobs.map((b) => b.digest), want.map(([d]) => d));
      for (const [i, [digest, size]] of want.entries()) {
        // SIZE is decimal with 4 significant digits ("1.987MB"), exact below 10 kB.
        const got = blobs[i]!.size;
        assert.ok(Math.abs(got - size) <= size * 0.0005, `${digest}: ${got} vs ${size}`);
      }
      const byDigest = new Map(blobs.map((b) => [b.digest, b]));
      for (const b of blobsOf(old)) assert.equal(byDigest.get(b.digest)?.ageText, "3 weeks");
      for (const b of blobsOf(app)) assert.notEqual(byDigest.get(b.digest)?.ageText, "3 weeks");
      const manifest = byDigest.get(app.manifest.digest)!;
      assert.equal(manifest.labels.get("containerd.io/gc.ref.content.config"), app.config.digest);
      assert.equal(manifest.labels.get("containerd.io/gc.ref.content.l.0"), app.layer.digest);
      const layer = byDigest.get(app.layer.digest)!;
      assert.equal(
        layer.labels.get("containerd.io/distribution.source.docker.io"),
        "library/ctre-app,library/ctre-app-mirror",
      );
      assert.equal(layer.labels.get("containerd.io/uncompressed"), app.layer.digest);
      assert.deepEqual(
        sorted(parseDigests(read(minor, "content_ls_q.txt"))),
        blobs.map((b) => b.digest),
      );
    });

    await t.step("content ls of k8s.io", () => {
      assert.deepEqual(
        parseContentLs(read(minor, "k8s_content_ls.txt")).map((b) => b.digest).sort(),
        expectedBlobs([pause]).map(([d]) => d),
      );
    });

    await t.step("image ls: refs, targets, sizes, platform, pins", () => {
      const rows = parseImageLs(read(minor, "image_ls.txt"));
      const want: [string, OciImage][] = [
        [APP, app],
        [APP_LATEST, app],
        [OLD, old],
        [PINNED, pinned],
        [old.config.digest, old],
      ];
      assert.deepEqual(
        rows.map((r) => [r.ref, r.digest, r.type, r.platforms]),
        want.map((
          [ref, image],
        ) => [ref, image.manifest.digest, MEDIA_TYPE_MANIFEST, `linux/${hostArch()}`]),
      );
      for (const [i, [, image]] of want.entries()) {
        const total = blobsOf(image).reduce((n, b) => n + b.size, 0);
        // SIZE has one decimal in binary units ("1.9 MiB"): within 0.05 MiB.
        assert.ok(
          Math.abs(rows[i]!.size - total) <= 0.05 * 1024 * 1024,
          `${rows[i]!.size} vs ${total}`,
        );
      }
      assert.deepEqual(rows.map((r) => r.labels.get("io.cri-containerd.pinned") ?? null), [
        null,
        null,
        null,
        "pinned",
        null,
      ]);
      assert.deepEqual(
        read(minor, "image_ls_q.txt").trimEnd().split("\n"),
        rows.map((r) => r.ref),
      );
    });

    await t.step("image ls of k8s.io: CRI labels and the sha256:<config> ref", () => {
      const rows = parseImageLs(read(minor, "k8s_image_ls.txt"));
      assert.deepEqual(
        rows.map((r) => [r.ref, r.digest, [...r.labels].sort()]),
        [
          [PAUSE, pause.manifest.digest, [
            ["io.cri-containerd.image", "managed"],
            ["io.cri-containerd.pinned", "pinned"],
          ]],
          [pause.config.digest, pause.manifest.digest, [["io.cri-containerd.image", "managed"]]],
        ],
      );
    });

    await t.step("container ls, task ls, containers info (with and without image)", () => {
      assert.deepEqual(parseContainerLs(read(minor, "container_ls.txt")), [
        { id: "ctre-created", image: PINNED, runtime: "io.containerd.runc.v2" },
        { id: "ctre-exited", image: OLD, runtime: "io.containerd.runc.v2" },
        { id: "ctre-running", image: APP, runtime: "io.containerd.runc.v2" },
      ]);
      assert.deepEqual(read(minor, "container_ls_q.txt").trimEnd().split("\n"), [
        "ctre-created",
        "ctre-exited",
        "ctre-running",
      ]);
      assert.deepEqual(parseContainerLs(read(minor, "moby_container_ls.txt")), [
        { id: MOBY_ID, image: null, runtime: "io.containerd.runc.v2" },
      ]);
      const tasks = parseTaskLs(read(minor, "task_ls.txt"))
        .map((task) => [task.id, task.status, task.pid > 0])
        .sort();
      assert.deepEqual(tasks, [["ctre-exited", "STOPPED", true], [
        "ctre-running",
        "RUNNING",
        true,
      ]]);
      const info = parseContainerInfo(read(minor, "containers_info.txt"));
      assert.equal(info.id, "ctre-running");
      assert.equal(info.image, APP);
      assert.match(info.createdAt, /^\d{4}-\d\d-\d\dT[\d:.]+Z$/);
      const moby = parseContainerInfo(read(minor, "moby_containers_info.txt"));
      assert.deepEqual([moby.id, moby.image], [MOBY_ID, ""]);
    });

    await t.step("image rm: removed refs and the missing one (not a failure)", () => {
      const refs = [APP_LATEST, MISSING, OLD];
      const r = {
        code: Number(read(minor, "image_rm.code").trim()),
        stdout: read(minor, "image_rm.stdout"),
        stderr: read(minor, "image_rm.stderr"),
      };
      assert.equal(r.code, 0);
      assert.deepEqual(readRemoval(refs, r, ["-n", "default", "image", "rm", ...refs]), {
        removed: [APP_LATEST, OLD],
        missing: [MISSING],
        failed: [],
      });
    });

    await t.step("container rm of a running container fails with ctr's reason", () => {
      const stderr = read(minor, "container_rm_running.stderr");
      assert.equal(read(minor, "container_rm_running.code").trim(), "1");
      const e = failure(["-n", "default", "container", "rm", "ctre-running"], {
        code: 1,
        stdout: "",
        stderr,
      });
      assert.match(e.message, /cannot delete a non stopped container/);
      assert.ok(!e.message.includes(HINT), e.message);
    });

    for (const name of ["ctr_down", "ctr_down_connect_timeout", "ctr_refused"]) {
      await t.step(`${name}: ctre adds the unreachable-containerd hint`, () => {
        const r = {
          code: Number(read(minor, `${name}.code`).trim()),
          stdout: read(minor, `${name}.stdout`),
          stderr: read(minor, `${name}.stderr`),
        };
        assert.equal(r.code, 1);
        const e = failure(["namespace", "ls", "-q"], r);
        assert.ok(e.message.endsWith(HINT), e.message);
      });
    }

    await t.step("ctr event: every line parses; one container's life; exit times", () => {
      const events = read(minor, "events.txt").split("\n").filter((l) => l !== "").map(
        parseEventLine,
      );
      assert.ok(events.every((e) => e.ns === "default"), "all in namespace default");
      const topics = events.map((e) => e.topic);
      for (
        const topic of [
          "/images/create",
          "/images/update",
          "/containers/create",
          "/tasks/start",
          "/tasks/exit",
          "/tasks/delete",
          "/containers/delete",
          "/images/delete",
        ]
      ) assert.ok(topics.includes(topic), `${topic} in ${topics.join(" ")}`);
      const create = events.find((e) => e.topic === "/containers/create")!;
      assert.deepEqual([field(create.payload, "id"), field(create.payload, "image")], [
        "ctre-ev",
        EVENTS_IMAGE,
      ]);
      const exits = events.filter((e) => e.topic === "/tasks/exit");
      assert.deepEqual(exits.map((e) => field(e.payload, "id")), ["x1", "ctre-ev"]);
      assert.equal(exits[0]!.payload.exit_status, undefined, "an exec exiting 0 has no status");
      for (const e of exits) {
        const at = payloadTime(e.payload.exited_at);
        assert.ok(at !== undefined && Math.abs(at - e.time) < 2, `${at} vs ${e.time}`);
      }
      const deleted = events.filter((e) => e.topic === "/images/delete");
      assert.deepEqual(deleted.map((e) => field(e.payload, "name")), [`${EVENTS_IMAGE}-alias`]);
      for (let i = 1; i < events.length; i++) assert.ok(events[i]!.time >= events[i - 1]!.time);
    });

    await t.step("ctr event ends with an error when containerd stops", () => {
      assert.equal(read(minor, "events_end.code").trim(), "1");
      assert.match(read(minor, "events_end.stderr"), /^ctr: rpc error: code = Unavailable/);
    });
  });
}
