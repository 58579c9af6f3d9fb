/**
 * deploy/: the DaemonSet (mounts, security context, image, args that ctre's own parser accepts),
 * the alert rules under Prometheus' own promtool (check and unit tests, each alert firing and not
 * firing), and that rules and dashboard only use metrics ctre writes.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
// Test-only npm dependency (never in what ships), pinned here rather than in deno.json.
// deno-lint-ignore no-import-prefix
import { parse as parseYaml, parseAllDocuments } from "npm:yaml@2.9.1";
import { parseCommand } from "../lib/cli/cli.ts";
import { DEFAULT_STATE_DIR } from "../lib/cli/permissions.ts";
import { pruneFamilies } from "../lib/prune/metric_families.ts";
import { recorderFamilies } from "../lib/recorder/metric_families.ts";
import { IMAGE_REF } from "../scripts/image.ts";

const PROMTOOL = "/opt/ctre-test-tools/promtool";
const path = (rel: string) => fileURLToPath(new URL(`../${rel}`, import.meta.url));
const RULES = path("deploy/prometheus/ctre.rules.yaml");
const RULE_TESTS = path("deploy/prometheus/ctre.rules.test.yaml");
const MANIFEST = path("deploy/kubernetes/ctre.yaml");
const DASHBOARD = path("deploy/grafana/ctre-dashboard.json");
const SOCKET = "/run/containerd/containerd.sock";

// deno-lint-ignore no-explicit-any
type Any = any;

async function promtool(args: string[]): Promise<{ code: number; output: string }> {
  const out = await new Deno.Command(PROMTOOL, { args, stdout: "piped", stderr: "piped" }).output();
  const d = new TextDecoder();
  return { code: out.code, output: d.decode(out.stdout) + d.decode(out.stderr) };
}

/** Every metric name ctre writes (prune's families with a measured store, the recorder's). */
function ctreMetrics(): Set<string> {
  const outcome = {
    removed: [],
    missing: [],
    failed: [],
    repointed: [],
    removedImages: 0,
    removedImageBytes: 0,
    reclaimedBytes: 0,
    contentBytesBefore: 1,
    contentBytesAfter: 1,
    containers: null,
    content: null,
  };
  const families = [
    ...pruneFamilies([], outcome, 1, 1, 0, {
      namespaces: new Map([["k8s.io", { content: 1, snapshot: 1, writable: 1 }]]),
      reclaimable: new Map([["k8s.io", 1]]),
    }),
    ...recorderFamilies({
      events: 0,
      recorded: 0,
      writes: 0,
      reconnects: 0,
      lastEventTime: 0,
      connected: true,
    }, 1),
  ];
  return new Set(families.map((f) => f.name));
}

function metricsIn(text: string): string[] {
  return [...new Set(text.match(/\bctre_[a-z_]+/g) ?? [])];
}

Deno.test("promtool check rules and promtool test rules pass", async () => {
  const check = await promtool(["check", "rules", RULES]);
  assert.equal(check.code, 0, check.output);
  assert.match(check.output, /SUCCESS: 8 rules found/);
  const test = await promtool(["test", "rules", RULE_TESTS]);
  assert.equal(test.code, 0, test.output);
  assert.match(test.output, /SUCCESS/);
});

Deno.test("every alert has a unit test where it fires and one where it does not", async () => {
  const rules = parseYaml(await Deno.readTextFile(RULES)) as Any;
  const alerts: string[] = rules.groups.flatMap((g: Any) => g.rules.map((r: Any) => r.alert));
  assert.deepEqual(alerts, [
    "CtreRecorderDown",
    "CtreRecorderNotWriting",
    "CtreRecorderDisconnected",
    "CtrePruneFailing",
    "CtrePruneNotRun",
    "CtreContentStoreOverBudget",
    "CtreReclaimableWhileDiskShort",
    "CtreRemovalsFailing",
  ]);
  const tests = parseYaml(await Deno.readTextFile(RULE_TESTS)) as Any;
  const cases: Any[] = tests.tests.flatMap((t: Any) => t.alert_rule_test ?? []);
  for (const alert of alerts) {
    const mine = cases.filter((c) => c.alertname === alert);
    assert.ok(mine.some((c) => c.exp_alerts.length > 0), `${alert} fires in a test`);
    assert.ok(mine.some((c) => c.exp_alerts.length === 0), `${alert} stays quiet in a test`);
    // A firing case names one node: the other node's series must not fire.
    for (const c of mine.filter((c) => c.exp_alerts.length > 0)) {
      assert.deepEqual(c.exp_alerts.map((a: Any) => a.exp_labels.instance), ["bad"], alert);
    }
  }
});

Deno.test("rules and dashboard use only metrics ctre writes", async () => {
  const known = ctreMetrics();
  assert.ok(known.has("ctre_prune_content_store_bytes"));
  for (const file of [RULES, RULE_TESTS, DASHBOARD]) {
    const used = metricsIn(await Deno.readTextFile(file));
    assert.ok(used.length > 0, file);
    for (const m of used) assert.ok(known.has(m), `${file}: ${m} is not a metric ctre writes`);
  }
  JSON.parse(await Deno.readTextFile(DASHBOARD));
});

Deno.test("the DaemonSet: mounts, security context, image, canary selector, ctre's own args", async () => {
  const docs = parseAllDocuments(await Deno.readTextFile(MANIFEST)).map((d) => d.toJS()) as Any[];
  const ds = docs.find((d) => d.kind === "DaemonSet");
  assert.ok(ds, "a DaemonSet");
  const pod = ds.spec.template.spec;
  assert.deepEqual(ds.spec.selector.matchLabels, ds.spec.template.metadata.labels);

  // Only the socket and the state dir from the host.
  assert.deepEqual(pod.volumes, [
    { name: "containerd-socket", hostPath: { path: SOCKET, type: "Socket" } },
    { name: "state", hostPath: { path: DEFAULT_STATE_DIR, type: "DirectoryOrCreate" } },
  ]);
  for (const key of ["hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace"]) {
    assert.ok(!pod[key], key);
  }
  assert.equal(pod.automountServiceAccountToken, false);
  assert.equal(pod.securityContext.runAsUser, 0, "root: the socket is root-owned");
  assert.equal(pod.securityContext.seccompProfile.type, "RuntimeDefault");
  assert.equal(pod.nodeSelector["ctre.io/canary"], "true");
  assert.ok(pod.terminationGracePeriodSeconds >= 60, "a prune run may finish after SIGTERM");

  assert.deepEqual(pod.containers.map((c: Any) => c.name), ["recorder", "pruner"]);
  for (const c of pod.containers) {
    assert.equal(c.image, IMAGE_REF, `${c.name}: the image deno task image builds`);
    assert.equal(c.imagePullPolicy, "IfNotPresent");
    assert.equal(c.command, undefined, `${c.name}: the entrypoint is ctre; args are its own`);
    assert.deepEqual(c.securityContext, {
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    }, c.name);
    assert.deepEqual(c.volumeMounts, [
      { name: "containerd-socket", mountPath: SOCKET, readOnly: true },
      { name: "state", mountPath: DEFAULT_STATE_DIR },
    ], c.name);
    for (const kind of ["requests", "limits"]) {
      assert.match(String(c.resources[kind].memory), /^\d+Mi$/, `${c.name} ${kind}`);
    }
    assert.match(String(c.resources.requests.cpu), /^\d+m$/, c.name);
    assert.ok(
      parseInt(c.resources.limits.memory) > parseInt(c.resources.requests.memory),
      c.name,
    );
  }
  const [recorder, pruner] = pod.containers;
  const rec = parseCommand(recorder.args);
  assert.ok(
    rec.kind === "record" && rec.record.metrics && rec.record.stateDir === DEFAULT_STATE_DIR,
  );
  assert.equal(rec.address, undefined, "ctr's default socket, where the hostPath is mounted");
  const pr = parseCommand(pruner.args);
  assert.ok(pr.kind === "prune");
  assert.equal(pr.prune.mode, "force");
  assert.ok(pr.prune.metrics);
  assert.equal(pr.prune.containerCleanup, false, "kubelet owns container garbage collection");
  assert.deepEqual(pr.schedule, { every: 86400, jitter: 7200 });
  assert.equal(pr.address, undefined);
});
