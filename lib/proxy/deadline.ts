/** A response deadline that also gives up when the browser goes away. */
import type { Clock } from "../log/clock.ts";
import { TunnelAbortedError, TunnelTimeoutError } from "./errors.ts";

export interface Deadline {
  /** Rejects with TunnelTimeoutError at the deadline or TunnelAbortedError on abort; never resolves. */
  readonly expired: Promise<never>;
  /** Races `p` against the deadline. */
  race<T>(p: Promise<T>): Promise<T>;
  /** Restarts the countdown (progress was made, e.g. an upload chunk was accepted). */
  touch(): void;
  clear(): void;
}

/** Starts a deadline of `ms` on `clock`, cut short by `signal`. */
export function startDeadline(clock: Clock, ms: number, signal?: AbortSignal): Deadline {
  let reject!: (e: Error) => void;
  const expired = new Promise<never>((_, r) => reject = r);
  expired.catch(() => {});
  let cleared = false;
  const arm = () => clock.setTimeout(() => reject(new TunnelTimeoutError(ms)), ms);
  let timer = arm();
  const onAbort = () => reject(new TunnelAbortedError());
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) onAbort();
  return {
    expired,
    race: (p) => Promise.race([p, expired]),
    touch() {
      if (cleared) return;
      clock.clearTimeout(timer);
      timer = arm();
    },
    clear() {
      cleared = true;
      clock.clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    },
  };
}
