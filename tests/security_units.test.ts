/** The pure pieces behind issue 11's defences: token buckets, log throttling, key sealing. */
import { assert, assertEquals, assertNotEquals } from "./support/assert.ts";
import { AddressBuckets, LogThrottle } from "../lib/dtls/address_buckets.ts";
import { createKeySealer, KeySealError } from "../db/key_seal.ts";

Deno.test("token buckets: a burst, then one token per refill interval, per address", () => {
  let now = 0;
  const b = new AddressBuckets({ burst: 3, perSecond: 2, now: () => now });
  assert(b.take("a") && b.take("a") && b.take("a"));
  assert(!b.take("a"));
  assert(b.take("b"), "another address has its own bucket");
  assertEquals(b.retryAfterSeconds("a"), 1);
  now += 499;
  assert(!b.take("a"));
  now += 1;
  assert(b.take("a"));
  now += 60_000;
  assertEquals(b.tokens("a"), 3, "never more than the burst");
});

Deno.test("token buckets: the table stays bounded, forgetting full buckets first", () => {
  let now = 0;
  const b = new AddressBuckets({ burst: 2, perSecond: 1, maxAddresses: 100, now: () => now });
  for (let i = 0; i < 1000; i++) b.take(`10.0.${i >> 8}.${i & 255}`);
  assert(b.size <= 100, `${b.size} buckets`);
  now += 10_000;
  b.take("fresh");
  assert(b.size <= 100);
});

Deno.test("log throttle: a few lines per window, then a count of the ones held back", () => {
  let now = 0;
  const t = new LogThrottle(() => now, 2, 1000);
  assertEquals([t.allow("x"), t.allow("x"), t.allow("x"), t.allow("x")], [0, 0, -1, -1]);
  now += 1000;
  assertEquals(t.allow("x"), 2);
  assertEquals(t.allow("y"), 0);
});

Deno.test("key sealing: round trip, fresh IVs, bound to its domain and secret", () => {
  const secret = crypto.getRandomValues(new Uint8Array(32));
  const sealer = createKeySealer(secret);
  const key = "ab".repeat(32);
  const a = sealer.seal("app.example.com", key);
  const b = sealer.seal("app.example.com", key);
  assertNotEquals(a, b);
  assert(!a.includes(key));
  assertEquals(sealer.open("app.example.com", a), key);
  assertEquals(sealer.lookup(key), sealer.lookup(key));
  assertNotEquals(
    sealer.lookup(key),
    createKeySealer(crypto.getRandomValues(new Uint8Array(32))).lookup(key),
  );
  const throws = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      return e instanceof KeySealError;
    }
    return false;
  };
  assert(throws(() => sealer.open("other.example.com", a)), "moved to another row");
  assert(throws(() => createKeySealer(new Uint8Array(32)).open("app.example.com", a)), "another secret");
  assert(throws(() => sealer.open("app.example.com", a.slice(0, -4) + "AAAA")), "tampered");
  for (let i = 0; i < 200; i++) {
    const junk = "v1." + btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(i % 80))));
    assert(throws(() => sealer.open("app.example.com", junk)), "random bytes never open");
  }
});
