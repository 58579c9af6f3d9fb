import assert from "node:assert/strict";
import { ParseError } from "../lib/core/errors.ts";
import {
  type CtrEvent,
  field,
  parseEventLine,
  parseEventLineFor,
  payloadTime,
} from "../lib/ctr/events.ts";

/** 2026-11-27 17:12:41 UTC in unix seconds. */
const T0 = Date.UTC(2026, 10, 27, 17, 12, 41) / 1000;

function assertEvent(actual: CtrEvent, expected: CtrEvent): void {
  assert.ok(
    Math.abs(actual.time - expected.time) < 1e-6,
    `time ${actual.time} is not ${expected.time}`,
  );
  assert.deepEqual({ ...actual, time: 0 }, { ...expected, time: 0 });
}

Deno.test("parseEventLine() reads hand-made lines of every shape", async (t) => {
  // [name, line, expected]
  const cases: [string, string, CtrEvent][] = [
    [
      "nanosecond fraction, 1.6 payload",
      "2026-11-27 17:12:41.976313083 +0000 UTC k8s.io /tasks/exit " +
      '{"container_id":"c1","id":"c1","pid":4242,"exit_status":137,' +
      '"exited_at":"2026-11-27T17:12:42.118099013Z"}',
      {
        time: T0 + 0.976313083,
        ns: "k8s.io",
        topic: "/tasks/exit",
        payload: {
          container_id: "c1",
          id: "c1",
          pid: 4242,
          exit_status: 137,
          exited_at: "2026-11-27T17:12:42.118099013Z",
        },
      },
    ],
    [
      "fraction with trailing zeros dropped",
      '2026-11-27 17:12:41.5 +0000 UTC default /containers/delete {"id":"c1"}',
      { time: T0 + 0.5, ns: "default", topic: "/containers/delete", payload: { id: "c1" } },
    ],
    [
      "no fraction when the nanoseconds are 0",
      '2026-11-27 17:12:41 +0000 UTC default /containers/create {"id":"c1","image":"x:1",' +
      '"runtime":{"name":"io.containerd.runc.v2"}}',
      {
        time: T0,
        ns: "default",
        topic: "/containers/create",
        payload: { id: "c1", image: "x:1", runtime: { name: "io.containerd.runc.v2" } },
      },
    ],
    [
      "1.7+ exited_at as seconds and nanos",
      "2026-11-27 17:12:41.976313083 +0000 UTC k8s.io /tasks/exit " +
      '{"container_id":"c1","id":"c1","pid":1,"exited_at":{"seconds":1795800762,"nanos":118}}',
      {
        time: T0 + 0.976313083,
        ns: "k8s.io",
        topic: "/tasks/exit",
        payload: {
          container_id: "c1",
          id: "c1",
          pid: 1,
          exited_at: { seconds: 1795800762, nanos: 118 },
        },
      },
    ],
    [
      "an event with no payload ends in a trailing space",
      "2026-11-27 17:12:41.1 +0000 UTC moby /snapshot/remove ",
      { time: T0 + 0.1, ns: "moby", topic: "/snapshot/remove", payload: {} },
    ],
    [
      "no payload and no trailing space",
      "2026-11-27 17:12:41 +0000 UTC moby /snapshot/remove",
      { time: T0, ns: "moby", topic: "/snapshot/remove", payload: {} },
    ],
    [
      "a zone other than UTC",
      '2026-11-27 18:12:41.25 +0100 CET default /tasks/start {"container_id":"c1","pid":7}',
      {
        time: T0 + 0.25,
        ns: "default",
        topic: "/tasks/start",
        payload: { container_id: "c1", pid: 7 },
      },
    ],
    [
      "a negative offset",
      '2026-11-27 12:12:41 -0500 EST default /images/delete {"name":"x:1"}',
      { time: T0, ns: "default", topic: "/images/delete", payload: { name: "x:1" } },
    ],
    [
      "a CRLF line end",
      '2026-11-27 17:12:41 +0000 UTC k8s.io /images/delete {"name":"x:1"}\r',
      { time: T0, ns: "k8s.io", topic: "/images/delete", payload: { name: "x:1" } },
    ],
    [
      "spaces inside the JSON payload",
      '2026-11-27 17:12:41 +0000 UTC k8s.io /images/update {"name":"x:1","labels":{"a":"b c"}}',
      {
        time: T0,
        ns: "k8s.io",
        topic: "/images/update",
        payload: { name: "x:1", labels: { a: "b c" } },
      },
    ],
  ];
  for (const [name, line, expected] of cases) {
    await t.step(name, () => assertEvent(parseEventLine(line), expected));
  }
});

Deno.test("parseEventLine() reads a time without fraction (the original crashed on it)", () => {
  // Regression: the Python event_lines() parsed with "%H:%M:%S.%f" and raised on "17:12:41".
  const e = parseEventLine('2026-11-27 17:12:41 +0000 UTC k8s.io /tasks/start {"pid":1}');
  assert.equal(e.time, T0);
});

Deno.test("parseEventLineFor() parses only the payloads asked for", () => {
  const wanted = (t: string) => t === "/tasks/exit";
  const start = '2026-11-27 17:12:41.5 +0000 UTC k8s.io /tasks/start {"pid":1}';
  const exit = '2026-11-27 17:12:42 +0000 UTC k8s.io /tasks/exit {"pid":1,"id":"a"}';
  assert.deepEqual(parseEventLineFor(start, wanted).payload, {});
  assert.equal(parseEventLineFor(start, wanted).time, T0 + 0.5);
  assert.deepEqual(parseEventLineFor(exit, wanted).payload, { pid: 1, id: "a" });
  assert.equal(parseEventLineFor(exit, wanted).time, T0 + 1, "the next second, not the last");
  // An ignored topic's broken payload is not read, so not an error; a read one's is.
  const broken = (topic: string) => `2026-11-27 17:12:41 +0000 UTC k8s.io ${topic} {"pid":`;
  assert.deepEqual(parseEventLineFor(broken("/tasks/start"), wanted).payload, {});
  assert.throws(() => parseEventLineFor(broken("/tasks/exit"), wanted), ParseError);
});

Deno.test("parseEventLine() throws ParseError for malformed lines", async (t) => {
  const bad = [
    "",
    "garbage",
    "2026-11-27 17:12:41 +0000 UTC",
    "2026-11-27 17:12:41 +0000 UTC k8s.io",
    "2026-11-27 17:12:41 +0000 UTC k8s.io tasks/exit {}",
    "2026-11-27T17:12:41Z k8s.io /tasks/exit {}",
    "2026-11-27 17:12:41 UTC k8s.io /tasks/exit {}",
    "2026-11-27 17:12:41.1234567890 +0000 UTC k8s.io /tasks/exit {}",
    '2026-11-27 17:12:41 +0000 UTC k8s.io /tasks/exit {"id":',
    "2026-11-27 17:12:41 +0000 UTC k8s.io /tasks/exit not-json",
    "2026-13-45 25:61:61 +0000 UTC k8s.io /tasks/exit {}",
    "Listening for events",
  ];
  for (const line of bad) {
    await t.step(JSON.stringify(line), () => {
      assert.throws(() => parseEventLine(line), ParseError);
    });
  }
});

Deno.test("parseEventLine() names the line in its error", () => {
  assert.throws(() => parseEventLine("garbage here"), /Cannot parse event line "garbage here"/);
  assert.throws(
    () => parseEventLine("2026-11-27 17:12:41 +0000 UTC k8s.io /tasks/exit {oops"),
    /payload of \/tasks\/exit/,
  );
});

Deno.test("payloadTime() reads both payload time forms", async (t) => {
  const exitedAt = Date.UTC(2026, 10, 27, 17, 12, 42) / 1000;
  // [name, value, expected unix seconds]
  const cases: [string, unknown, number][] = [
    ["1.6 RFC 3339 with nanoseconds", "2026-11-27T17:12:42.118099013Z", exitedAt + 0.118099013],
    ["1.6 RFC 3339 without fraction", "2026-11-27T17:12:42Z", exitedAt],
    ["RFC 3339 with an offset", "2026-11-27T18:12:42.5+01:00", exitedAt + 0.5],
    ["1.7+ seconds and nanos", { seconds: 1795800762, nanos: 118099013 }, 1795800762.118099013],
    ["1.7+ seconds only", { seconds: 1795800762 }, 1795800762],
    ["1.7+ seconds as a string", { seconds: "1795800762", nanos: 500000000 }, 1795800762.5],
  ];
  for (const [name, value, expected] of cases) {
    await t.step(name, () => {
      const got = payloadTime(value);
      assert.ok(got !== undefined && Math.abs(got - expected) < 1e-6, `${got} is not ${expected}`);
    });
  }
});

Deno.test("payloadTime() is undefined when absent or unreadable", async (t) => {
  const cases: unknown[] = [
    undefined,
    null,
    "",
    "yesterday",
    {},
    { nanos: 5 },
    {
      seconds: "x",
    },
    1795800762,
    true,
  ];
  for (const value of cases) {
    await t.step(JSON.stringify(value) ?? "undefined", () => {
      assert.equal(payloadTime(value), undefined);
    });
  }
});

Deno.test("field() returns string fields only", () => {
  const payload = { id: "c1", pid: 7, image: "", labels: { a: "b" } };
  assert.equal(field(payload, "id"), "c1");
  assert.equal(field(payload, "image"), "");
  assert.equal(field(payload, "pid"), undefined);
  assert.equal(field(payload, "labels"), undefined);
  assert.equal(field(payload, "missing"), undefined);
});

function fixtureLines(path: string): string[] {
  return Deno.readTextFileSync(new URL(`./testdata/${path}`, import.meta.url)).split("\n")
    .filter((l) => l !== "");
}

Deno.test("parseEventLine() reads every line of a real ctr 1.6 event stream", async (t) => {
  const lines = fixtureLines("ctr-1.6/events.txt");
  const events = lines.map(parseEventLine);
  const base = Date.UTC(2026, 10, 27, 21, 52, 32) / 1000;
  await t.step("topics and namespaces in order", () => {
    assert.deepEqual(events.map((e) => `${e.ns} ${e.topic}`), [
      "default /images/create",
      "default /snapshot/prepare",
      "default /snapshot/commit",
      "default /images/create",
      "default /images/update",
      "default /snapshot/prepare",
      "default /containers/create",
      "default /tasks/create",
      "default /tasks/start",
      "default /tasks/exec-added",
      "default /tasks/exec-started",
      "default /tasks/exit",
      "default /tasks/exit",
      "default /tasks/delete",
      "default /snapshot/remove",
      "default /containers/delete",
      "default /images/delete",
    ]);
  });
  await t.step("times, including a fraction of 8 digits", () => {
    const fractions = [
      0.071520147,
      0.092875812,
      0.125076322,
      0.187735366,
      0.225823306,
      0.277899876,
      0.292901727,
      0.403051772,
      0.433762609,
      0.484726563,
      0.55524793,
      0.55607458,
      0.600053647,
      0.680157843,
      0.729191578,
      0.731421058,
      0.751736673,
    ];
    events.forEach((e, i) => {
      assert.ok(Math.abs(e.time - (base + fractions[i]!)) < 1e-6, `line ${i + 1}: ${e.time}`);
    });
  });
  await t.step("the container's create and main exit payloads", () => {
    assertEvent(events[6]!, {
      time: base + 0.292901727,
      ns: "default",
      topic: "/containers/create",
      payload: {
        id: "ctre-ev",
        image: "docker.io/library/ctre-events:1",
        runtime: {
          name: "io.containerd.runc.v2",
          options: {
            type_url: "containerd.runc.v1.Options",
            value: "OigvdG1wL2N0cmUtZTJlLWNmOTViY2Q2M2VhM2I1ZjQvcnVuYy1yb290",
          },
        },
      },
    });
    assertEvent(events[12]!, {
      time: base + 0.600053647,
      ns: "default",
      topic: "/tasks/exit",
      payload: {
        container_id: "ctre-ev",
        id: "ctre-ev",
        pid: 16418,
        exit_status: 137,
        exited_at: "2026-11-27T21:52:32.599923112Z",
      },
    });
    const exitedAt = payloadTime(events[12]!.payload.exited_at)!;
    assert.ok(Math.abs(exitedAt - (base + 0.599923112)) < 1e-6, `${exitedAt}`);
  });
  await t.step("an exec's exit has id = exec id", () => {
    assert.equal(field(events[11]!.payload, "id"), "x1");
    assert.equal(field(events[11]!.payload, "container_id"), "ctre-ev");
  });
});

Deno.test("parseEventLine() reads every line of a hand-made 2.x event stream (ctr-2.x)", async (t) => {
  const events = fixtureLines("ctr-2.x/events.txt").map(parseEventLine);
  await t.step("topics, namespaces and times", () => {
    assert.deepEqual(
      events.map((e) => [e.ns, e.topic, Math.round((e.time - T0) * 1e6) / 1e6]),
      [
        ["k8s.io", "/snapshot/prepare", 0.000123],
        ["k8s.io", "/containers/create", 0],
        ["k8s.io", "/tasks/create", 0.52],
        ["k8s.io", "/tasks/start", 0.561],
        ["k8s.io", "/tasks/exec-added", 9.1],
        ["k8s.io", "/tasks/exec-started", 9.2],
        ["k8s.io", "/tasks/exit", 9.3],
        ["k8s.io", "/tasks/exit", 21.77],
        ["k8s.io", "/tasks/delete", 21.8],
        ["k8s.io", "/containers/delete", 22],
        ["k8s.io", "/snapshot/remove", 22.4],
        ["moby", "/containers/create", 23],
        ["k8s.io", "/images/delete", 24.5],
        ["k8s.io", "/example/no-payload", 25],
      ],
    );
  });
  await t.step("exited_at as seconds and nanos", () => {
    assert.deepEqual(events[7]!.payload.exited_at, { seconds: T0 + 21, nanos: 769000000 });
    const exitedAt = payloadTime(events[7]!.payload.exited_at)!;
    assert.ok(Math.abs(exitedAt - (T0 + 21.769)) < 1e-6, `${exitedAt}`);
  });
  await t.step("no payload", () => assert.deepEqual(events[13]!.payload, {}));
  await t.step("a moby container without image", () => {
    assert.equal(field(events[11]!.payload, "image"), undefined);
  });
});
