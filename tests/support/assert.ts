/** The few assertions the tests need (jsr:@std/assert cannot be fetched here). */

export class AssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AssertionError";
  }
}

/** Fails unless the value is truthy. */
export function assert(value: unknown, message = "expected a truthy value"): asserts value {
  if (!value) throw new AssertionError(message);
}

function stable(v: unknown): string {
  return JSON.stringify(v, (_k, x) => {
    if (x instanceof Uint8Array) return `Uint8Array(${Array.from(x).join(",")})`;
    if (x && typeof x === "object" && !Array.isArray(x)) {
      return Object.fromEntries(Object.keys(x).sort().map((k) => [k, (x as Record<string, unknown>)[k]]));
    }
    return x;
  });
}

/** Deep equality through a canonical JSON form (key order ignored). */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  if (Object.is(actual, expected)) return;
  const a = stable(actual);
  const e = stable(expected);
  if (a !== e) {
    throw new AssertionError(
      `${message ? message + ": " : ""}expected ${e.slice(0, 500)}, got ${a.slice(0, 500)}`,
    );
  }
}

export function assertNotEquals<T>(actual: T, expected: T, message?: string): void {
  if (stable(actual) === stable(expected)) {
    throw new AssertionError(message ?? `expected a value other than ${stable(expected)}`);
  }
}

export function assertMatch(actual: string, pattern: RegExp, message?: string): void {
  if (!pattern.test(actual)) {
    throw new AssertionError(
      message ?? `expected ${JSON.stringify(actual.slice(0, 300))} to match ${pattern}`,
    );
  }
}

/** Awaits the promise and fails unless it rejects; returns the error. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  check?: (e: unknown) => boolean,
  message?: string,
): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    if (check && !check(e)) throw new AssertionError(message ?? `rejected with an unexpected error: ${e}`);
    return e;
  }
  throw new AssertionError(message ?? "expected a rejection");
}

/** Calls fn and fails unless it throws; returns the error. */
export function assertThrows(fn: () => unknown, check?: (e: unknown) => boolean, message?: string): unknown {
  try {
    fn();
  } catch (e) {
    if (check && !check(e)) throw new AssertionError(message ?? `threw an unexpected error: ${e}`);
    return e;
  }
  throw new AssertionError(message ?? "expected a throw");
}
