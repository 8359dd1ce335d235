/** The wait helpers: each gives up on time and names what it waited for. */
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { eventually, sleep, within } from "./support/wait.ts";

Deno.test("sleep waits at least the time asked", async () => {
  const start = performance.now();
  await sleep(30);
  assert(performance.now() - start >= 29, "slept less than 30 ms");
});

Deno.test("eventually returns once the check holds, sync or async", async () => {
  let n = 0;
  await eventually(() => ++n >= 3, "three polls", 1000, 1);
  assertEquals(n, 3);
  await eventually(() => Promise.resolve(++n >= 5), "five polls", 1000, 1);
  assertEquals(n, 5);
});

Deno.test("eventually gives up after its timeout, naming what it waited for", async () => {
  const start = performance.now();
  const e = await assertRejects(() => eventually(() => false, "the moon", 60, 5), Error);
  assertEquals(e.message, "timed out after 60 ms waiting for the moon");
  assert(performance.now() - start >= 59, "gave up early");
});

Deno.test("within settles as the promise does, or rejects naming what was late", async () => {
  assertEquals(await within(Promise.resolve(7), 100, "seven"), 7);
  const e = await assertRejects(() => within(new Promise(() => {}), 20, "the slow one"), Error);
  assertEquals(e.message, "timed out after 20 ms waiting for the slow one");
  await assertRejects(() => within(Promise.reject(new RangeError("own")), 100, "x"), RangeError);
});
