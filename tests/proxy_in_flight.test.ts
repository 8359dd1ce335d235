/** The in-flight counter behind the server's drain and the client's retirement (lib/proxy/in_flight.ts). */
import { InFlight } from "../lib/proxy/in_flight.ts";
import { assert, assertEquals } from "./support/assert.ts";

Deno.test("in flight: counts work until it settles, rejected or not; drained resolves at zero", async () => {
  const f = new InFlight();
  await f.drained(); // nothing in progress: at once
  const a = Promise.withResolvers<void>();
  const b = Promise.withResolvers<void>();
  f.track(a.promise);
  f.track(b.promise);
  assertEquals(f.size, 2);
  let done = false;
  const drained = f.drained().then(() => done = true);
  a.resolve();
  await a.promise;
  await Promise.resolve();
  assertEquals(f.size, 1);
  assert(!done, "drained waits for the last one");
  b.reject(new Error("failed work still ends"));
  await drained;
  assertEquals(f.size, 0);
});

Deno.test("in flight: drained gives up after its time when work goes on", async () => {
  const f = new InFlight();
  const never = Promise.withResolvers<void>();
  f.track(never.promise);
  const t0 = performance.now();
  await f.drained(50);
  assert(performance.now() - t0 >= 45, "waited its time");
  assertEquals(f.size, 1);
  never.resolve();
});
