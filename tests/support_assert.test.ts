/** The assertions themselves: each one must fail where a test relies on it failing. */
import {
  assert,
  assertEquals,
  assertFalse,
  AssertionError,
  assertMatch,
  assertNotEquals,
  assertNotMatch,
  assertRejects,
  assertThrows,
} from "./support/assert.ts";

/** The message of the AssertionError that `fn` throws (and fails when it throws none). */
function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof AssertionError) return e.message;
    throw e;
  }
  throw new Error("the assertion passed where it should have failed");
}

class Coded extends Error {
  constructor(readonly code: string) {
    super(`code ${code}`);
  }
}

Deno.test("assertEquals: equal structures pass, key order ignored", () => {
  assertEquals({ a: 1, b: [1, 2, { c: "x" }] }, { b: [1, 2, { c: "x" }], a: 1 });
  assertEquals(NaN, NaN);
  assertEquals(new Uint8Array([1, 2, 3]), Uint8Array.of(1, 2, 3));
  assertEquals(new Map([["k", { v: 1 }]]), new Map([["k", { v: 1 }]]));
  assertEquals(new Set([1, "a", { o: 1 }]), new Set([{ o: 1 }, "a", 1]));
  assertEquals(new Map([[{ k: 1 }, 2]]), new Map([[{ k: 1 }, 2]]));
  assertEquals(new Date(5), new Date(5));
  assertEquals(10n, 10n);
  const cyclic: Record<string, unknown> = { n: 1 };
  cyclic.self = cyclic;
  const cyclic2: Record<string, unknown> = { n: 1 };
  cyclic2.self = cyclic2;
  assertEquals(cyclic, cyclic2);
});

Deno.test("assertEquals: each kind of difference fails and names where", () => {
  assertMatch(
    failure(() => assertEquals({ a: { b: [1, 2] } }, { a: { b: [1, 3] } })),
    /^value\.a\.b\[1\]: expected 3, got 2/,
  );
  assertMatch(
    failure(() => assertEquals(Uint8Array.of(1, 2), Uint8Array.of(1, 3))),
    /value\[1\]: expected 3, got 2/,
  );
  assertMatch(failure(() => assertEquals(Uint8Array.of(1), Uint8Array.of(1, 3))), /expected length 2, got 1/);
  assertMatch(
    failure(() => assertEquals(Uint8Array.of(1) as unknown, [1])),
    /expected a value of class Array, got Uint8Array/,
  );
  assertMatch(
    failure(() => assertEquals(new Map([["k", 1]]), new Map([["k", 2]]))),
    /\.get\("k"\): expected 2/,
  );
  assertMatch(failure(() => assertEquals(new Map([["k", 1]]), new Map([["j", 1]]))), /unexpected key "k"/);
  assertMatch(failure(() => assertEquals(new Set([1, 2]), new Set([1, 3]))), /unexpected member 2/);
  assertMatch(failure(() => assertEquals(new Set([{ a: 1 }]), new Set([{ a: 2 }]))), /unexpected member/);
  assertMatch(failure(() => assertEquals({ a: undefined } as object, {})), /unexpected a/);
  assertMatch(failure(() => assertEquals({} as object, { b: 1 })), /missing b/);
  assertMatch(failure(() => assertEquals(0, -0)), /expected -0, got 0/);
  assertMatch(failure(() => assertEquals(new Date(1), new Date(2))), /expected/);
  assertMatch(
    failure(() => assertEquals(new Headers() as unknown, {})),
    /expected a value of class Object, got Headers/,
  );
  assertMatch(failure(() => assertEquals(new Error("x"), new Error("y"))), /expected Error: y, got Error: x/);
  assertMatch(
    failure(() => assertEquals("a", "b", "the label")),
    /^the label: value: expected "b", got "a"$/,
  );
  assertMatch(failure(() => assertEquals([1], [1, 2])), /expected an array of 2, got 1/);
});

Deno.test("assertNotEquals, assert, assertFalse, assertMatch, assertNotMatch fail when they should", () => {
  assertNotEquals({ a: 1 }, { a: 2 });
  failure(() => assertNotEquals({ a: 1 }, { a: 1 }));
  assert(1);
  assertMatch(failure(() => assert(0, "why")), /^why$/);
  assertFalse("");
  failure(() => assertFalse("x"));
  assertNotMatch("abc", /d/);
  failure(() => assertNotMatch("abc", /b/));
  failure(() => assertMatch("abc", /d/));
});

Deno.test("assertThrows: checks the error's class or a predicate, returns the error", () => {
  const e = assertThrows(() => {
    throw new Coded("truncated");
  }, Coded);
  assertEquals(e.code, "truncated");
  assertThrows(() => {
    throw new Coded("truncated");
  }, (e) => e instanceof Coded && e.code === "truncated");
  assertMatch(
    failure(() =>
      assertThrows(() => {
        throw new Coded("other");
      }, (e) => e instanceof Coded && e.code === "truncated")
    ),
    /threw an unexpected error: Error \(code "other"\): code other/,
  );
  assertMatch(
    failure(() =>
      assertThrows(() => {
        throw new Error("plain");
      }, Coded)
    ),
    /threw Error: plain, expected a Coded/,
  );
  assertMatch(failure(() => assertThrows(() => 1)), /expected a throw/);
});

Deno.test("assertRejects: checks the rejection like assertThrows and fails on a resolved promise", async () => {
  const e = await assertRejects(() => Promise.reject(new Coded("x")), Coded);
  assertEquals(e.code, "x");
  await assertRejects(
    () => Promise.reject(new Error("GOODBYE where DATA")),
    (e) => /GOODBYE/.test(String(e)),
  );
  let message = "";
  await assertRejects(() => Promise.resolve(1)).catch((e) => message = e.message);
  assertEquals(message, "expected a rejection");
  await assertRejects(() => Promise.reject(new Error("plain")), Coded).catch((e) => message = e.message);
  assertMatch(message, /rejected with Error: plain, expected a Coded/);
});
