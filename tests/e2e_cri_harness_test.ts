// The CRI harness itself, on a real containerd CRI plugin: pull from the local registry, a pod,
// a container through its whole life, what ctr sees, and clean-up leaving nothing behind.
import assert from "node:assert/strict";
import { cgroupDirsOf, processesReferencing } from "./support/containerd.ts";
import { CRI_NAMESPACE, CriError, CriNode, withCri } from "./support/cri.ts";

Deno.test("withCri() runs pods and containers through CRI and cleans up", async () => {
  let seen: CriNode | undefined;
  await withCri(async (node) => {
    seen = node;
    const img = await node.pushImage("library/a:1", "a1");
    const imageRef = await node.pullImage(img.ref);
    assert.deepEqual(imageRef, img.config);
    const status = await node.imageStatus(img.ref);
    assert.deepEqual(status.image.id, img.config);
    assert.deepEqual(
      await node.imageRefs(),
      [
        `${img.ref.split(":").slice(0, -1).join(":")}@${img.digest}`,
        img.ref,
        img.config,
      ].sort(),
    );
    const labels = await node.containerd.ctrOk(["-n", CRI_NAMESPACE, "image", "ls"]);
    assert.match(labels, /io\.cri-containerd\.image=managed/);

    const pod = await node.runPod("web");
    assert.deepEqual((await node.podSandboxStatus(pod.id)).status.state, "SANDBOX_READY");
    const id = await node.createContainer(pod, "app", img.ref);
    assert.deepEqual((await node.containerStatus(id)).status.state, "CONTAINER_CREATED");
    await node.startContainer(id);
    assert.deepEqual((await node.containerStatus(id)).status.state, "CONTAINER_RUNNING");
    assert.deepEqual((await node.containerStatus(id)).status.image_ref, img.digestRef);
    const tasks = await node.containerd.taskStatuses(CRI_NAMESPACE);
    assert.deepEqual(tasks.get(id), "RUNNING");
    assert.deepEqual(tasks.get(pod.id), "RUNNING");

    await node.stopContainer(id);
    assert.deepEqual((await node.containerStatus(id)).status.state, "CONTAINER_EXITED");
    // CRI keeps the container (no task) for kubelet to remove.
    assert.deepEqual(await node.containerIds(), [id, pod.id].sort());
    const info = JSON.parse(
      await node.containerd.ctrOk(["-n", CRI_NAMESPACE, "container", "info", id]),
    );
    assert.deepEqual(info.Labels["io.cri-containerd.kind"], "container");
    assert.deepEqual((await node.listContainers({ pod_sandbox_id: pod.id })).length, 1);

    await node.stopPod(pod.id);
    assert.deepEqual((await node.podSandboxStatus(pod.id)).status.state, "SANDBOX_NOTREADY");
    await node.removeContainer(id);
    await assert.rejects(
      () => node.containerStatus(id),
      (e) => e instanceof CriError && e.code === 5, // NOT_FOUND
    );
    await node.removePod(pod.id);
    assert.deepEqual(await node.containerIds(), []);

    // A pod left running is removed by withCri's clean-up.
    const pod2 = await node.runPod("left-running");
    await node.startContainer(await node.createContainer(pod2, "app", img.ref));
  });
  assert(seen !== undefined);
  const dir = seen.containerd.dir;
  assert.deepEqual(await processesReferencing(dir), []);
  assert.deepEqual(await cgroupDirsOf(dir), []);
  assert.deepEqual(await Deno.stat(dir).then(() => true, () => false), false);
  assert.deepEqual(await Deno.stat(seen.registry.dir).then(() => true, () => false), false);
});
