import assert from "node:assert/strict";
import { applyEvent, type ImageUse, isStart, type UseOutcome } from "../lib/policy/usage_event.ts";
import { usageKey } from "../lib/state/line_file.ts";
import type { Usage } from "../lib/state/usage_db.ts";

const NS = "k8s.io";
const REF = "docker.io/library/nginx:1.25";
const KEY = usageKey(NS, REF);
const T = 1_800_000_000;

interface Case {
  name: string;
  before: Usage | undefined;
  use: ImageUse;
  outcome: UseOutcome;
  /** The entry of (NS, REF) afterwards; undefined: none. */
  after: Usage | undefined;
}

const CASES: Case[] = [
  {
    name: "a first create records a start, whole seconds",
    before: undefined,
    use: { mark: "C", time: T + 0.97, ns: NS, ref: REF },
    outcome: { kind: "recorded", line: `C ${T} ${NS} ${REF}` },
    after: { start: T, stop: null },
  },
  {
    name: "a task start replaces the start and keeps the stop",
    before: { start: T, stop: T + 5 },
    use: { mark: "T", time: T + 10, ns: NS, ref: REF },
    outcome: { kind: "recorded", line: `T ${T + 10} ${NS} ${REF}` },
    after: { start: T + 10, stop: T + 5 },
  },
  {
    name: "a task exit sets the stop and keeps the start",
    before: { start: T, stop: null },
    use: { mark: "t", time: T + 9.5, ns: NS, ref: REF },
    outcome: { kind: "recorded", line: `t ${T + 9} ${NS} ${REF}` },
    after: { start: T, stop: T + 9 },
  },
  {
    name: "a stop with no start recorded uses the stop as start",
    before: undefined,
    use: { mark: "t", time: T + 30, ns: NS, ref: REF },
    outcome: { kind: "recorded", line: `t ${T + 30} ${NS} ${REF}` },
    after: { start: T + 30, stop: T + 30 },
  },
  {
    name: "an image volume mount is a start",
    before: undefined,
    use: { mark: "V", time: T, ns: NS, ref: REF },
    outcome: { kind: "recorded", line: `V ${T} ${NS} ${REF}` },
    after: { start: T, stop: null },
  },
  {
    name: "an image volume removal is a stop",
    before: { start: T, stop: null },
    use: { mark: "v", time: T + 60, ns: NS, ref: REF },
    outcome: { kind: "recorded", line: `v ${T + 60} ${NS} ${REF}` },
    after: { start: T, stop: T + 60 },
  },
  {
    name: "no image ref: logged, nothing recorded",
    before: undefined,
    use: { mark: "C", time: T, ns: NS, ref: null },
    outcome: { kind: "no-ref", line: `C ${T} ${NS} NO_IMAGE_REF` },
    after: undefined,
  },
  {
    name: "no image ref in moby: not even logged (docker's containers never have one)",
    before: undefined,
    use: { mark: "T", time: T, ns: "moby", ref: null },
    outcome: { kind: "no-ref", line: null },
    after: undefined,
  },
  {
    name: "a ref with whitespace is refused",
    before: undefined,
    use: { mark: "C", time: T, ns: NS, ref: "a b" },
    outcome: {
      kind: "unsafe",
      error: `not recording "${NS}" "a b": whitespace or control characters`,
    },
    after: undefined,
  },
  {
    name: "a namespace with a control character is refused",
    before: { start: T, stop: null },
    use: { mark: "T", time: T + 1, ns: "k8s\u0001io", ref: REF },
    outcome: {
      kind: "unsafe",
      error: `not recording "k8s\\u0001io" "${REF}": whitespace or control characters`,
    },
    after: { start: T, stop: null },
  },
];

Deno.test("applyEvent() merges one use into the entries", async (t) => {
  for (const c of CASES) {
    await t.step(c.name, () => {
      const entries = new Map<string, Usage>();
      if (c.before) entries.set(KEY, { ...c.before });
      const outcome = applyEvent(entries, c.use);
      assert.deepEqual(outcome, c.outcome);
      assert.deepEqual(entries.get(KEY), c.after);
      const others = [...entries.keys()].filter((k) => k !== KEY);
      const recordedElsewhere = outcome.kind === "recorded" && c.use.ns !== NS;
      assert.equal(others.length, recordedElsewhere ? 1 : 0, "no other entry changes");
    });
  }
});

Deno.test("isStart() is true for upper-case marks only", () => {
  const marks = ["C", "T", "V", "t", "v"] as const;
  assert.deepEqual(
    marks.map((mark) => isStart({ mark, time: T, ns: NS, ref: REF })),
    [true, true, true, false, false],
  );
});
