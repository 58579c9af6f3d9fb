import assert from "node:assert/strict";
import { contentPrunePlan, MOBY_CONTENT_PRUNE_SKIPPED } from "../lib/policy/content_scope.ts";

Deno.test("content prune skips namespace moby unless --content-prune-moby", () => {
  assert.deepEqual(contentPrunePlan(["default", "k8s.io", "moby"], { contentPruneMoby: false }), {
    prune: ["default", "k8s.io"],
    skipped: [{ namespace: "moby", why: MOBY_CONTENT_PRUNE_SKIPPED }],
  });
  assert.deepEqual(contentPrunePlan(["moby"], { contentPruneMoby: true }), {
    prune: ["moby"],
    skipped: [],
  });
  assert.match(MOBY_CONTENT_PRUNE_SKIPPED, /docker save/);
});
