/** Minimal assertions for the transport tests (jsr: is unreachable here). */

export class AssertionError extends Error {
  override name = "AssertionError";
}

export function assert(cond: unknown, message = "assertion failed"): asserts cond {
  if (!cond) throw new AssertionError(message);
}

export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (!Object.is(actual, expected) && a !== e) {
    throw new AssertionError(`${message ? message + ": " : ""}expected ${e}, got ${a}`);
  }
}

export function assertThrows(fn: () => unknown, type?: new (...args: never[]) => Error): Error {
  try {
    fn();
  } catch (e) {
    if (type !== undefined && !(e instanceof type)) {
      throw new AssertionError(`expected ${type.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    }
    return e as Error;
  }
  throw new AssertionError("expected an exception");
}

export async function assertRejects(
  p: Promise<unknown>,
  type?: new (...args: never[]) => Error,
): Promise<Error> {
  try {
    await p;
  } catch (e) {
    if (type !== undefined && !(e instanceof type)) {
      throw new AssertionError(`expected ${type.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    }
    return e as Error;
  }
  throw new AssertionError("expected a rejection");
}
