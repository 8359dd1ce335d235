/** A response deadline that also gives up when the browser goes away. */
import type { Clock } from "../log/clock.ts";
import { TunnelAbortedError, TunnelTimeoutError } from "./errors.ts";

export interface Deadline {
  /** Races `p` against the deadline: rejects with TunnelTimeoutError at the deadline, TunnelAbortedError on abort. */
  race<T>(p: Promise<T>): Promise<T>;
  /** Restarts the countdown (progress was made, e.g. an upload chunk was accepted). */
  touch(): void;
  /** The browser went away. */
  abort(): void;
  clear(): void;
}

/** Starts a deadline of `ms` on `clock`. */
export function startDeadline(clock: Clock, ms: number): Deadline {
  let reject!: (e: Error) => void;
  const expired = new Promise<never>((_, r) => reject = r);
  expired.catch(() => {});
  let cleared = false;
  const arm = () => clock.setTimeout(() => reject(new TunnelTimeoutError(ms)), ms);
  let timer = arm();
  return {
    race: (p) => Promise.race([p, expired]),
    touch() {
      if (cleared) return;
      clock.clearTimeout(timer);
      timer = arm();
    },
    abort() {
      if (!cleared) reject(new TunnelAbortedError());
    },
    clear() {
      cleared = true;
      clock.clearTimeout(timer);
    },
  };
}
