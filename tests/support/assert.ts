/**
 * The one assertion module for every test (jsr:@std/assert cannot be fetched here).
 *
 * Equality is strict and structural, as node:assert's deepStrictEqual: same prototypes, same own
 * enumerable keys (a key holding `undefined` is not a missing key), typed arrays element by element,
 * Map and Set by content, Date by time, primitives by `Object.is` (so NaN equals NaN, 0 is not -0).
 * A failure names the path of the first difference, then shows both values.
 */

export class AssertionError extends Error {
  override name = "AssertionError";
}

/** An error class, or a predicate the error must satisfy. */
// deno-lint-ignore no-explicit-any -- any error class, whatever its constructor's parameters
export type ErrorCheck<E> = (new (...args: any[]) => E) | ((e: unknown) => boolean);

function show(v: unknown): string {
  const text = Deno.inspect(v, {
    depth: 6,
    iterableLimit: 50,
    strAbbreviateSize: 300,
    sorted: true,
    compact: true,
    breakLength: Infinity,
  });
  return text.length > 600 ? `${text.slice(0, 600)}…` : text;
}

function kind(v: object): string {
  const proto = Object.getPrototypeOf(v);
  if (proto === null) return "null-prototype object";
  return proto.constructor?.name ?? "object";
}

function keyPath(path: string, key: string | symbol): string {
  if (typeof key === "symbol") return `${path}[${String(key)}]`;
  if (/^\d+$/.test(key)) return `${path}[${key}]`;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function ownKeys(o: object): (string | symbol)[] {
  const symbols = Object.getOwnPropertySymbols(o).filter((s) =>
    Object.prototype.propertyIsEnumerable.call(o, s)
  );
  return [...Object.keys(o), ...symbols];
}

/** Finds, among `pool`, an entry deep-equal to `want` that was not taken yet (object keys of Maps and Sets). */
function takeEqual<T>(pool: T[], want: T, taken: Set<number>, seen: Map<object, object>): number {
  for (let i = 0; i < pool.length; i++) {
    if (!taken.has(i) && differ(pool[i], want, "", new Map(seen)) === undefined) return i;
  }
  return -1;
}

function differMap(
  a: Map<unknown, unknown>,
  b: Map<unknown, unknown>,
  at: string,
  seen: Map<object, object>,
) {
  if (a.size !== b.size) return `${at}: expected a Map of ${b.size} entries, got ${a.size}`;
  const looseB = [...b].filter(([k]) => !a.has(k));
  const taken = new Set<number>();
  for (const [k, v] of a) {
    if (b.has(k)) {
      const d = differ(v, b.get(k), `${at}.get(${show(k)})`, seen);
      if (d !== undefined) return d;
      continue;
    }
    const i = typeof k === "object" && k !== null ? takeEqual(looseB, [k, v], taken, seen) : -1;
    if (i < 0) return `${at}: unexpected key ${show(k)}`;
    taken.add(i);
  }
  return undefined;
}

function differSet(a: Set<unknown>, b: Set<unknown>, at: string, seen: Map<object, object>) {
  if (a.size !== b.size) return `${at}: expected a Set of ${b.size} members, got ${a.size}`;
  const looseB = [...b].filter((x) => !a.has(x));
  const taken = new Set<number>();
  for (const x of a) {
    if (b.has(x)) continue;
    const i = typeof x === "object" && x !== null ? takeEqual(looseB, x, taken, seen) : -1;
    if (i < 0) return `${at}: unexpected member ${show(x)}`;
    taken.add(i);
  }
  return undefined;
}

function differView(a: ArrayBufferView, b: ArrayBufferView, at: string) {
  const isTyped = !(a instanceof DataView);
  const ea = isTyped
    ? a as unknown as ArrayLike<number | bigint>
    : new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const eb = isTyped
    ? b as unknown as ArrayLike<number | bigint>
    : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  if (ea.length !== eb.length) return `${at}: expected length ${eb.length}, got ${ea.length}`;
  for (let i = 0; i < ea.length; i++) {
    if (!Object.is(ea[i], eb[i])) return `${at}[${i}]: expected ${show(eb[i])}, got ${show(ea[i])}`;
  }
  return undefined;
}

/** The first difference between `a` (actual) and `b` (expected), or undefined when they are equal. */
function differ(a: unknown, b: unknown, path: string, seen: Map<object, object>): string | undefined {
  if (Object.is(a, b)) return undefined;
  const at = path || "value";
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) {
    return `${at}: expected ${show(b)}, got ${show(a)}`;
  }
  // A cycle already being compared against the same partner is equal so far.
  if (seen.get(a) === b) return undefined;
  seen.set(a, b);
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) {
    return `${at}: expected a value of class ${kind(b)}, got ${kind(a)} (${show(a)})`;
  }
  if (a instanceof WeakMap || a instanceof WeakSet || a instanceof Promise) {
    return `${at}: two different ${kind(a)}s (only the same one is equal)`;
  }
  if (a instanceof Date || a instanceof Number || a instanceof String || a instanceof Boolean) {
    const [va, vb] = [a.valueOf(), (b as typeof a).valueOf()];
    if (!Object.is(va, vb)) return `${at}: expected ${show(b)}, got ${show(a)}`;
  }
  if (a instanceof RegExp && String(a) !== String(b)) return `${at}: expected ${b}, got ${a}`;
  if (a instanceof Error) {
    const e = b as Error;
    if (a.name !== e.name || a.message !== e.message) {
      return `${at}: expected ${e.name}: ${e.message}, got ${a.name}: ${a.message}`;
    }
  }
  if (a instanceof ArrayBuffer) {
    return differView(new Uint8Array(a), new Uint8Array(b as ArrayBuffer), at);
  }
  if (ArrayBuffer.isView(a)) {
    const d = differView(a, b as ArrayBufferView, at);
    if (d !== undefined || !(a instanceof DataView)) return d;
  }
  if (a instanceof Map) {
    const d = differMap(a, b as Map<unknown, unknown>, at, seen);
    if (d !== undefined) return d;
  }
  if (a instanceof Set) {
    const d = differSet(a, b as Set<unknown>, at, seen);
    if (d !== undefined) return d;
  }
  if (Array.isArray(a) && a.length !== (b as unknown[]).length) {
    return `${at}: expected an array of ${(b as unknown[]).length}, got ${a.length}`;
  }
  const ka = ownKeys(a);
  const kb = ownKeys(b);
  const missing = kb.filter((k) => !Object.prototype.propertyIsEnumerable.call(a, k));
  if (missing.length) return `${at}: missing ${missing.map((k) => keyPath("", k).slice(1)).join(", ")}`;
  const extra = ka.filter((k) => !Object.prototype.propertyIsEnumerable.call(b, k));
  if (extra.length) return `${at}: unexpected ${extra.map((k) => keyPath("", k).slice(1)).join(", ")}`;
  for (const k of ka) {
    const d = differ(
      (a as Record<string | symbol, unknown>)[k],
      (b as Record<string | symbol, unknown>)[k],
      keyPath(path, k),
      seen,
    );
    if (d !== undefined) return d;
  }
  return undefined;
}

/** True when the two values are structurally equal (the comparison assertEquals makes). */
export function equal(actual: unknown, expected: unknown): boolean {
  return differ(actual, expected, "value", new Map()) === undefined;
}

/** Fails unless the value is truthy. */
export function assert(value: unknown, message = "expected a truthy value"): asserts value {
  if (!value) throw new AssertionError(message);
}

/** Fails unless the value is falsy. */
export function assertFalse(value: unknown, message?: string): void {
  if (value) throw new AssertionError(message ?? `expected a falsy value, got ${show(value)}`);
}

/** Fails unless the two are structurally equal; the message names the first difference. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  const d = differ(actual, expected, "value", new Map());
  if (d === undefined) return;
  const values = typeof actual === "object" && actual !== null
    ? `\n  expected: ${show(expected)}\n  actual:   ${show(actual)}`
    : "";
  throw new AssertionError(`${message ? message + ": " : ""}${d}${values}`);
}

/** Fails when the two are structurally equal. */
export function assertNotEquals<T>(actual: T, expected: T, message?: string): void {
  if (equal(actual, expected)) {
    throw new AssertionError(message ?? `expected a value other than ${show(expected)}`);
  }
}

/** Fails unless `pattern` matches somewhere in `actual`. */
export function assertMatch(actual: string, pattern: RegExp, message?: string): void {
  if (!pattern.test(actual)) {
    throw new AssertionError(message ?? `expected ${show(actual)} to match ${pattern}`);
  }
}

/** Fails when `pattern` matches somewhere in `actual`. */
export function assertNotMatch(actual: string, pattern: RegExp, message?: string): void {
  if (pattern.test(actual)) {
    throw new AssertionError(message ?? `expected ${show(actual)} not to match ${pattern}`);
  }
}

function isErrorClass(check: unknown): check is new (...args: never[]) => Error {
  return typeof check === "function" && (check === Error || check.prototype instanceof Error);
}

/** An error as a failure shows it: name, code when it has one, message. */
function describeError(e: unknown): string {
  if (!(e instanceof Error)) return show(e);
  const code = (e as { code?: unknown }).code;
  return `${e.name}${code === undefined ? "" : ` (code ${show(code)})`}: ${e.message}`;
}

function checkError(
  e: unknown,
  check: ErrorCheck<unknown> | undefined,
  verb: string,
  message?: string,
): void {
  if (check === undefined) return;
  if (isErrorClass(check)) {
    if (e instanceof check) return;
    throw new AssertionError(message ?? `${verb} ${describeError(e)}, expected a ${check.name}`);
  }
  if (!(check as (e: unknown) => boolean)(e)) {
    throw new AssertionError(message ?? `${verb} an unexpected error: ${describeError(e)}`);
  }
}

/** Calls fn and fails unless it throws (an instance of the class, or an error the predicate accepts). */
export function assertThrows<E = unknown>(fn: () => unknown, check?: ErrorCheck<E>, message?: string): E {
  try {
    fn();
  } catch (e) {
    checkError(e, check, "threw", message);
    return e as E;
  }
  throw new AssertionError(message ?? "expected a throw");
}

/** Awaits fn's promise and fails unless it rejects (as assertThrows checks the error). */
export async function assertRejects<E = unknown>(
  fn: () => Promise<unknown>,
  check?: ErrorCheck<E>,
  message?: string,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    checkError(e, check, "rejected with", message);
    return e as E;
  }
  throw new AssertionError(message ?? "expected a rejection");
}
