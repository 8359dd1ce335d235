/** Response deadlines on a shared coarse wheel, in simulated time. */
import { assert, assertEquals } from "./support/assert.ts";
import { ManualClock } from "./support/manual_clock.ts";
import { startDeadline, TICK_MS } from "../lib/proxy/deadline.ts";
import { TunnelAbortedError, TunnelTimeoutError } from "../lib/proxy/errors.ts";
import { sleep } from "./support/wait.ts";

const never = new Promise<never>(() => {});

/** What `p` settled to so far: "pending", its value, or its error. */
function outcome(
  p: Promise<unknown>,
): { value: unknown; failed(type: new (...a: never[]) => Error): boolean } {
  const box = {
    value: "pending" as unknown,
    failed: (type: new (...a: never[]) => Error) => box.value instanceof type,
  };
  p.then((v) => box.value = v, (e) => box.value = e);
  return box;
}

const settle = () => sleep(0);

Deno.test("a deadline fires between ms and ms + one tick, not before; touch restarts it", async () => {
  const clock = new ManualClock();
  const d = startDeadline(clock, 1000);
  const r = outcome(d.race(never));
  clock.advance(999);
  await settle();
  assertEquals(r.value, "pending");
  d.touch();
  clock.advance(999);
  await settle();
  assertEquals(r.value, "pending", "touched at 999 ms: not due at 1998 ms");
  clock.advance(1000 + TICK_MS);
  await settle();
  assert(r.failed(TunnelTimeoutError));
});

Deno.test("a thousand deadlines share one clock timer, and none is left once they are cleared", () => {
  const inner = new ManualClock();
  const live = new Set<number>();
  const clock = {
    now: () => inner.now(),
    setTimeout(fn: () => void, ms: number) {
      const id = inner.setTimeout(() => {
        live.delete(id);
        fn();
      }, ms);
      live.add(id);
      return id;
    },
    clearTimeout(id: number) {
      live.delete(id);
      inner.clearTimeout(id);
    },
  };
  const all = Array.from({ length: 1000 }, (_, i) => startDeadline(clock, 60_000 + i));
  assert(live.size <= 1, `${live.size} timers`);
  for (const d of all) d.clear();
  assertEquals(live.size, 0);
});

Deno.test("abort rejects at once with TunnelAbortedError; a cleared deadline never fires", async () => {
  const clock = new ManualClock();
  const a = startDeadline(clock, 1000);
  const ra = outcome(a.race(never));
  a.abort();
  await settle();
  assert(ra.failed(TunnelAbortedError));
  const b = startDeadline(clock, 1000);
  const rb = outcome(b.race(new Promise((r) => setTimeout(() => r("answer"), 1))));
  b.clear();
  clock.advance(5000);
  await sleep(10);
  assertEquals(rb.value, "answer");
});
