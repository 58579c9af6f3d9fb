/**
 * Kubernetes' CRI without kubelet, for end-to-end tests: a private containerd with its real CRI
 * plugin (tests/support/containerd.ts), a private registry (tests/support/registry.ts) and a CRI
 * gRPC client (npm @grpc/grpc-js in ONE long-lived Node process, tests/support/cri_client.cjs,
 * spoken to over JSON lines). Works with containerd 1.6, 1.7 and 2.x (whichever `containerd` is
 * first on PATH). Tools come from scripts/setup_cri.sh (cached under /opt/ctre-test-tools).
 *
 *   await withCri(async (node) => {
 *     const img = await node.pushImage("library/a:1", "one");   // built offline, pushed
 *     await node.pullImage(img.ref);                            // CRI PullImage
 *     const pod = await node.runPod("web");                     // host network, own cgroup
 *     const ctr = await node.createContainer(pod, "app", img.ref); // runs `sleep 100000`
 *     await node.startContainer(ctr);
 *     await node.stopContainer(ctr);                            // EXITED, kept by CRI
 *     (await node.containerStatus(ctr)).status.state;           // "CONTAINER_EXITED"
 *     node.containerd.address;                                  // for ctre --address
 *   });
 *
 * Every CRI call is also available raw: `node.client.call("RuntimeService", "ListContainers",
 * {filter: {}})` (proto field names, snake_case; int64 as strings; enums as names).
 * `withCri` cleans up everything: CRI pods and containers, containerd (tasks, shims, mounts,
 * cgroups incl. each pod's cgroup parent), the registry, the Node process.
 *
 * Images live in containerd namespace `k8s.io` as CRI makes them: tag, `repo@sha256:<manifest>`
 * and `sha256:<config>` refs, labelled `io.cri-containerd.image=managed`; the sandbox image
 * (`<registry>/pause:1`) is also labelled `io.cri-containerd.pinned=pinned` (1.6.22+).
 *
 * @module
 */

import { backdate } from "./bolt_stamp.ts";
import { TestContainerd } from "./containerd.ts";
import { buildOciImage } from "./oci_image.ts";
import { TestRegistry } from "./registry.ts";

const CACHE = Deno.env.get("CTRE_TEST_CACHE") ?? "/opt/ctre-test-tools";
/** runtime.v1 api.proto from Debian trixie's golang-github-kubernetes-cri-api-dev. */
export const CRI_PROTO = `${CACHE}/debs/trixie/golang-github-kubernetes-cri-api-dev` +
  "/usr/share/gocode/src/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto";
/** node_modules holding @grpc/grpc-js and @grpc/proto-loader. */
export const CRI_NODE_MODULES = `${CACHE}/cri-node/node_modules`;
const CLIENT_SCRIPT = new URL("./cri_client.cjs", import.meta.url).pathname;

/** The namespace CRI keeps its images and containers in. */
export const CRI_NAMESPACE = "k8s.io";
/** Namespace used only to push images to the registry (removed again after each push). */
const PUSH_NAMESPACE = "ctre-push";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A gRPC error answered by containerd (code per grpc status codes, e.g. 5 = NOT_FOUND). */
export class CriError extends Error {
  constructor(readonly method: string, readonly code: number, readonly details: string) {
    super(`CRI ${method} failed (code ${code}): ${details}`);
  }
}

// deno-lint-ignore no-explicit-any
type Json = any;

/** One Node process speaking CRI gRPC on `address`; calls are JSON objects in, JSON out. */
export class CriClient {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #pending = new Map<number, { resolve: (v: Json) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #reading: Promise<void>;
  #closed = false;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#reading = this.#readAnswers();
  }

  /** Starts the client process for containerd's socket `address`. */
  static start(address: string): CriClient {
    const child = new Deno.Command("node", {
      args: [CLIENT_SCRIPT, CRI_NODE_MODULES, CRI_PROTO, address],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    return new CriClient(child);
  }

  async #readAnswers(): Promise<void> {
    let buffer = "";
    try {
      for await (const chunk of this.#child.stdout) {
        buffer += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          if (line.trim() === "") continue;
          const msg = JSON.parse(line) as Json;
          const waiter = this.#pending.get(msg.id);
          if (waiter === undefined) continue;
          this.#pending.delete(msg.id);
          if (msg.error) {
            waiter.reject(
              new CriError(String(msg.method ?? ""), msg.error.code, msg.error.details),
            );
          } else waiter.resolve(msg.response);
        }
      }
    } finally {
      for (const w of this.#pending.values()) w.reject(new Error("CRI client process ended"));
      this.#pending.clear();
    }
  }

  /** Calls `service.method(request)`; rejects with {@linkcode CriError} on a gRPC error. */
  async call(
    service: "RuntimeService" | "ImageService",
    method: string,
    request: Json = {},
    timeoutMs = 60_000,
  ): Promise<Json> {
    if (this.#closed) throw new Error("CRI client is closed");
    const id = this.#nextId++;
    const answer = new Promise<Json>((resolve, reject) => {
      this.#pending.set(id, {
        resolve,
        reject: (e) => {
          if (e instanceof CriError) reject(new CriError(method, e.code, e.details));
          else reject(e);
        },
      });
    });
    await this.#writer.write(
      encoder.encode(JSON.stringify({ id, service, method, request, timeoutMs }) + "\n"),
    );
    return await answer;
  }

  /** Ends the Node process and waits for it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#writer.close().catch(() => {});
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // gone
      }
    }, 5_000);
    await this.#child.status;
    clearTimeout(timer);
    await this.#reading.catch(() => {});
  }
}

/** `[major, minor, patch]` of the `containerd` on PATH. */
export async function containerdVersion(): Promise<[number, number, number]> {
  const out = await new Deno.Command("containerd", { args: ["--version"], stdout: "piped" })
    .output();
  const m = /\s(\d+)\.(\d+)\.(\d+)/.exec(decoder.decode(out.stdout));
  if (!m) throw new Error(`cannot read containerd --version: ${decoder.decode(out.stdout)}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/**
 * The CRI plugin's config (version-2 names: 1.6 and 1.7 read them, 2.x migrates them) for a
 * containerd in `dir` pulling from `registryConfigPath`. `restrict_oom_score_adj` is required
 * here (no CAP_SYS_RESOURCE: runc fails otherwise); CNI dirs are private and empty (pods use the
 * host network).
 */
export function criConfigToml(
  c: TestContainerd,
  opts: { sandboxImage: string; registryConfigPath: string },
): string {
  const q = JSON.stringify;
  const cri = '[plugins."io.containerd.grpc.v1.cri"]';
  const snapshotter = Deno.env.get("CTRE_E2E_SNAPSHOTTER") ?? "overlayfs";
  return [
    `  ${cri}`,
    `    sandbox_image = ${q(opts.sandboxImage)}`,
    "    restrict_oom_score_adj = true",
    "    disable_apparmor = true",
    "    enable_selinux = false",
    "    enable_cdi = false",
    '    stream_server_address = "127.0.0.1"',
    '    stream_server_port = "0"',
    `  ${cri.slice(0, -1)}.containerd]`,
    `    snapshotter = ${q(snapshotter)}`,
    '    default_runtime_name = "runc"',
    `  ${cri.slice(0, -1)}.containerd.runtimes.runc]`,
    '    runtime_type = "io.containerd.runc.v2"',
    `  ${cri.slice(0, -1)}.containerd.runtimes.runc.options]`,
    `    Root = ${q(c.runcRoot)}`,
    "    SystemdCgroup = false",
    `  ${cri.slice(0, -1)}.cni]`,
    `    bin_dir = ${q(`${c.dir}/cni-bin`)}`,
    `    conf_dir = ${q(`${c.dir}/cni-conf`)}`,
    `  ${cri.slice(0, -1)}.registry]`,
    `    config_path = ${q(opts.registryConfigPath)}`,
    "",
  ].join("\n");
}

/** An image pushed to the test registry. */
export interface PushedImage {
  /** `<registry host>/<name>`, e.g. `127.0.0.1:5000/library/a:1`. */
  ref: string;
  /** Manifest digest (the image target). */
  digest: string;
  /** Config digest (CRI's image id, `sha256:<…>`, also a ref CRI creates). */
  config: string;
  /** `<repository>@<manifest digest>`, the ref CRI creates beside the tag (its repo digest). */
  digestRef: string;
}

/** A running pod sandbox and the config it was created with (CreateContainer needs it). */
export interface Pod {
  id: string;
  name: string;
  config: Json;
}

/** A containerd with CRI, a registry and a CRI client. Create with {@linkcode withCri}. */
export class CriNode {
  #podSeq = 0;
  #pushes = 0;
  readonly pods = new Set<string>();

  constructor(
    readonly containerd: TestContainerd,
    readonly registry: TestRegistry,
    readonly client: CriClient,
    /** The sandbox ("pause") image ref, pushed at start, pulled by CRI on the first pod. */
    readonly sandboxImage: string,
  ) {}

  /** `<registry host>/<name>`. */
  ref(name: string): string {
    return `${this.registry.host}/${name}`;
  }

  /**
   * Builds a busybox image offline (oci_image.ts) and pushes it to the registry as
   * `<host>/<name>` (`ctr image push --plain-http` through a scratch namespace that is removed
   * again, so nothing stays in containerd). Same name and variant give the same digest.
   */
  async pushImage(name: string, variant: string, cmd?: string[]): Promise<PushedImage> {
    const ref = this.ref(name);
    const image = await buildOciImage(ref, variant, cmd ? { cmd } : {});
    const c = this.containerd;
    const tar = `${c.dir}/push-${++this.#pushes}.tar`;
    await Deno.writeFile(tar, image.tar);
    try {
      await c.ctrOk(["-n", PUSH_NAMESPACE, "image", "import", tar]);
      await c.ctrOk(["-n", PUSH_NAMESPACE, "image", "push", "--plain-http", ref]);
      await c.ctrOk(["-n", PUSH_NAMESPACE, "image", "rm", "--sync", ref]);
      await c.ctr(["namespace", "rm", PUSH_NAMESPACE]);
    } finally {
      await Deno.remove(tar).catch(() => {});
    }
    const repo = ref.slice(0, ref.lastIndexOf(":"));
    return {
      ref,
      digest: image.manifest.digest,
      config: image.config.digest,
      digestRef: `${repo}@${image.manifest.digest}`,
    };
  }

  /** CRI PullImage; returns the image_ref (`sha256:<config>`). */
  async pullImage(ref: string): Promise<string> {
    const r = await this.client.call("ImageService", "PullImage", { image: { image: ref } });
    return r.image_ref;
  }

  /** CRI ImageStatus (`image` is null when CRI does not know it). */
  imageStatus(ref: string): Promise<Json> {
    return this.client.call("ImageService", "ImageStatus", { image: { image: ref } });
  }

  /** CRI RemoveImage. */
  async removeImage(ref: string): Promise<void> {
    await this.client.call("ImageService", "RemoveImage", { image: { image: ref } });
  }

  /** CRI ListImages. */
  async listImages(): Promise<Json[]> {
    return (await this.client.call("ImageService", "ListImages", {})).images;
  }

  /**
   * CRI RunPodSandbox of pod `name` (namespace `default`, a fresh uid) as kubelet would for a
   * hostNetwork pod: node network, its own cgroup parent under the containerd's temp dir (so
   * cleanup removes it).
   */
  async runPod(name: string, labels: Record<string, string> = {}): Promise<Pod> {
    const seq = ++this.#podSeq;
    const uid = `uid-${seq}-${crypto.randomUUID()}`;
    const cgroupParent = `/${this.containerd.dir.slice(this.containerd.dir.lastIndexOf("/") + 1)}` +
      `/pod-${seq}`;
    const config = {
      metadata: { name, uid, namespace: "default", attempt: 0 },
      log_directory: "",
      labels: {
        "io.kubernetes.pod.name": name,
        "io.kubernetes.pod.namespace": "default",
        "io.kubernetes.pod.uid": uid,
        ...labels,
      },
      annotations: {},
      linux: {
        cgroup_parent: cgroupParent,
        security_context: { namespace_options: { network: "NODE", pid: "POD", ipc: "POD" } },
      },
    };
    const r = await this.client.call("RuntimeService", "RunPodSandbox", { config }, 120_000);
    this.pods.add(r.pod_sandbox_id);
    return { id: r.pod_sandbox_id, name, config };
  }

  /** CRI CreateContainer `name` in `pod` from `image` (a ref or image id); returns its id. */
  async createContainer(
    pod: Pod,
    name: string,
    image: string,
    command: string[] = ["sleep", "100000"],
    attempt = 0,
  ): Promise<string> {
    const config = {
      metadata: { name, attempt },
      image: { image },
      command,
      labels: {
        "io.kubernetes.pod.name": pod.name,
        "io.kubernetes.pod.namespace": "default",
        "io.kubernetes.pod.uid": pod.config.metadata.uid,
        "io.kubernetes.container.name": name,
      },
      linux: {
        security_context: { namespace_options: { network: "NODE", pid: "POD", ipc: "POD" } },
      },
    };
    const r = await this.client.call("RuntimeService", "CreateContainer", {
      pod_sandbox_id: pod.id,
      config,
      sandbox_config: pod.config,
    });
    return r.container_id;
  }

  /** CRI StartContainer. */
  async startContainer(id: string): Promise<void> {
    await this.client.call("RuntimeService", "StartContainer", { container_id: id });
  }

  /** CRI StopContainer (timeout 0: SIGKILL at once). The container stays, EXITED. */
  async stopContainer(id: string, timeoutSeconds = 0): Promise<void> {
    await this.client.call("RuntimeService", "StopContainer", {
      container_id: id,
      timeout: String(timeoutSeconds),
    });
  }

  /** CRI RemoveContainer. */
  async removeContainer(id: string): Promise<void> {
    await this.client.call("RuntimeService", "RemoveContainer", { container_id: id });
  }

  /** CRI ContainerStatus (`status.state` is e.g. "CONTAINER_RUNNING", "CONTAINER_EXITED"). */
  containerStatus(id: string): Promise<Json> {
    return this.client.call("RuntimeService", "ContainerStatus", { container_id: id });
  }

  /** CRI ListContainers with an optional filter (`{pod_sandbox_id}`, `{state: {state}}`, …). */
  async listContainers(filter: Json = {}): Promise<Json[]> {
    return (await this.client.call("RuntimeService", "ListContainers", { filter })).containers;
  }

  /** CRI StopPodSandbox (kills its containers and the sandbox task; the sandbox stays). */
  async stopPod(id: string): Promise<void> {
    await this.client.call("RuntimeService", "StopPodSandbox", { pod_sandbox_id: id });
  }

  /** CRI RemovePodSandbox (removes its containers too). */
  async removePod(id: string): Promise<void> {
    await this.client.call("RuntimeService", "RemovePodSandbox", { pod_sandbox_id: id });
    this.pods.delete(id);
  }

  /** CRI PodSandboxStatus (`status.state` is "SANDBOX_READY" or "SANDBOX_NOTREADY"). */
  podSandboxStatus(id: string): Promise<Json> {
    return this.client.call("RuntimeService", "PodSandboxStatus", { pod_sandbox_id: id });
  }

  /** CRI ListPodSandbox. */
  async listPods(filter: Json = {}): Promise<Json[]> {
    return (await this.client.call("RuntimeService", "ListPodSandbox", { filter })).items;
  }

  /** Container ids in `k8s.io` as ctr sees them (sandboxes and containers), sorted. */
  containerIds(): Promise<string[]> {
    return this.containerd.containerIds(CRI_NAMESPACE);
  }

  /** Image refs in `k8s.io` as ctr sees them, sorted. */
  imageRefs(): Promise<string[]> {
    return this.containerd.imageRefs(CRI_NAMESPACE);
  }

  /**
   * Backdates containers (CreatedAt, UpdatedAt) in containerd's metadata DB by `ageSeconds`:
   * stops containerd, rewrites them (tests/support/bolt_stamp.ts), starts it again and waits until
   * CRI answers (CRI recovers its pods and containers as after any containerd restart; running
   * tasks keep running). For clean-up rules that spare containers updated recently.
   */
  async ageContainers(ids: string[], ageSeconds: number): Promise<void> {
    const c = this.containerd;
    await c.stopDaemon();
    try {
      await backdate(c.metaDb, CRI_NAMESPACE, "containers", ids, ageSeconds);
    } finally {
      await c.startDaemon();
    }
    await waitCriReady(this.client, c);
  }

  /** Stops and removes every pod CRI lists (best effort, never throws). */
  async removeAllPods(): Promise<void> {
    let pods: Json[] = [];
    try {
      pods = await this.listPods();
    } catch {
      return;
    }
    for (const p of pods) {
      await this.stopPod(p.id).catch(() => {});
      await this.removePod(p.id).catch(() => {});
    }
  }
}

/**
 * Starts a registry, a containerd with CRI pulling from it and a CRI client; pushes the sandbox
 * image; runs `fn`; always cleans everything up.
 */
export async function withCri(fn: (node: CriNode) => Promise<void>): Promise<void> {
  const registry = await TestRegistry.start();
  let containerd: TestContainerd | undefined;
  let client: CriClient | undefined;
  let node: CriNode | undefined;
  try {
    const sandboxImage = `${registry.host}/pause:1`;
    containerd = await TestContainerd.start({
      criConfig: (c) => criConfigToml(c, { sandboxImage, registryConfigPath: registry.configPath }),
    });
    client = CriClient.start(containerd.address);
    node = new CriNode(containerd, registry, client, sandboxImage);
    await node.pushImage("pause:1", "pause", ["sleep", "2147483647"]);
    await waitCriReady(client, containerd);
    await fn(node);
  } finally {
    if (node !== undefined) await node.removeAllPods();
    await client?.close();
    await containerd?.cleanup();
    await registry.stop();
  }
}

/** Waits until CRI answers Version (the plugin may start a moment after ctr answers). */
async function waitCriReady(client: CriClient, c: TestContainerd): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (true) {
    try {
      await client.call("RuntimeService", "Version", {}, 5_000);
      return;
    } catch (e) {
      if (Date.now() > deadline) {
        const log = await Deno.readTextFile(c.logPath).catch(() => "");
        throw new Error(
          `CRI did not answer: ${e instanceof Error ? e.message : e}\n${log.slice(-3000)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
