/** ProgressLine: one line redrawn in place on a terminal, throttled; inert elsewhere. */
import assert from "node:assert/strict";
import { groupDigits, ProgressLine } from "../lib/core/progress.ts";

function capture() {
  const out = {
    text: "",
    write(t: string) {
      out.text += t;
    },
  };
  return out;
}

Deno.test("groupDigits() groups thousands with commas", () => {
  const table: [number, string][] = [[0, "0"], [999, "999"], [1200, "1,200"], [4000, "4,000"], [
    1234567,
    "1,234,567",
  ]];
  for (const [n, text] of table) assert.equal(groupDigits(n), text);
});

Deno.test("ProgressLine draws the first and last counts, at most every 0.1 s between", () => {
  const out = capture();
  let now = 100;
  const p = new ProgressLine(out, true, () => now);
  p.update("removing images", 0, 4000);
  p.update("removing images", 100, 4000); // same instant: skipped
  now += 0.05;
  p.update("removing images", 200, 4000); // 50 ms later: skipped
  now += 0.06;
  p.update("removing images", 1200, 4000);
  p.update("removing images", 4000, 4000); // the last: always
  p.clear();
  p.clear(); // nothing left to erase
  assert.equal(
    out.text,
    "\r\x1b[Kremoving images 0/4,000\r\x1b[Kremoving images 1,200/4,000" +
      "\r\x1b[Kremoving images 4,000/4,000\r\x1b[K",
  );
});

Deno.test("ProgressLine writes nothing when not on a terminal", () => {
  const out = capture();
  const p = new ProgressLine(out, false, () => 0);
  p.update("removing images", 0, 10);
  p.update("removing images", 10, 10);
  p.clear();
  assert.equal(out.text, "");
});
