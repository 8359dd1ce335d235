/** Minimal assertions for the DTLS tests (jsr:@std/assert is not reachable here); node:assert underneath. */
import nodeAssert from "node:assert/strict";

export function assert(cond: unknown, msg?: string): asserts cond {
  nodeAssert.ok(cond, msg);
}

export function assertFalse(cond: unknown, msg?: string): void {
  nodeAssert.ok(!cond, msg);
}

export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}

export function assertThrows(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any -- any error class, as in @std/assert
  errorClass?: new (...args: any[]) => Error,
  msg?: string,
): void {
  let threw = false;
  try {
    fn();
  } catch (e) {
    threw = true;
    if (errorClass !== undefined && !(e instanceof errorClass)) {
      throw new Error(`expected ${errorClass.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    }
  }
  if (!threw) throw new Error(msg ?? "expected the function to throw");
}

export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any -- any error class, as in @std/assert
  errorClass: new (...args: any[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof errorClass)) {
      throw new Error(`expected ${errorClass.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    }
    return e;
  }
  throw new Error(`expected a rejection with ${errorClass.name}`);
}
