/**
 * The one way tests wait in real time: a pause, a condition polled until it holds, a promise given a
 * deadline. Each failure names what was awaited. (Timers that decide behaviour run on a ManualClock
 * instead; these are for real sockets, processes and databases.)
 */

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls `check` every `everyMs` until it is true; throws naming `what` after `timeoutMs`.
 * A check that throws fails the wait at once (wrap it when an error means "not yet").
 */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
  everyMs = 50,
): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Rejects naming `what` when `p` takes longer than `ms`; otherwise settles as `p` does. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
