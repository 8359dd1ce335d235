/**
 * Response deadlines that also give up when the browser goes away. Every request has one, so they
 * share a coarse wheel (buckets of TICK_MS, one clock timer for the earliest bucket) instead of a
 * timer set and cleared per request: a 60 s deadline needs no millisecond precision, and the per-request
 * timer was ≈ 4% of the server's CPU under small-request load.
 */
import type { Clock, TimerId } from "../log/clock.ts";
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

/** Granularity of deadlines: a deadline fires between `ms` and `ms + TICK_MS` after it was set. */
export const TICK_MS = 50;

/** Buckets of callbacks due at the same tick, with one clock timer for the earliest. */
class Wheel {
  #buckets = new Map<number, Set<() => void>>();
  #timer: TimerId | undefined;
  #armedFor = Infinity;

  constructor(readonly clock: Clock) {}

  add(at: number, fn: () => void): number {
    const tick = Math.ceil(at / TICK_MS) * TICK_MS;
    let bucket = this.#buckets.get(tick);
    if (!bucket) this.#buckets.set(tick, bucket = new Set());
    bucket.add(fn);
    if (tick < this.#armedFor) this.#arm(tick);
    return tick;
  }

  remove(tick: number, fn: () => void): void {
    const bucket = this.#buckets.get(tick);
    if (!bucket) return;
    bucket.delete(fn);
    if (bucket.size > 0) return;
    this.#buckets.delete(tick);
    // Nothing left to wait for: no timer may outlive the last deadline.
    if (this.#buckets.size === 0 && this.#timer !== undefined) {
      this.clock.clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#armedFor = Infinity;
    }
  }

  #arm(tick: number): void {
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#armedFor = tick;
    this.#timer = this.clock.setTimeout(() => this.#fire(), Math.max(0, tick - this.clock.now()));
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = this.clock.now();
    let next = Infinity;
    for (const [tick, bucket] of this.#buckets) {
      if (tick <= now) {
        this.#buckets.delete(tick);
        for (const fn of bucket) fn();
      } else if (tick < next) next = tick;
    }
    if (next !== Infinity) this.#arm(next);
  }
}

const wheels = new WeakMap<Clock, Wheel>();

function wheelFor(clock: Clock): Wheel {
  let w = wheels.get(clock);
  if (!w) wheels.set(clock, w = new Wheel(clock));
  return w;
}

/** Starts a deadline of `ms` on `clock`. */
export function startDeadline(clock: Clock, ms: number): Deadline {
  const wheel = wheelFor(clock);
  let reject!: (e: Error) => void;
  const expired = new Promise<never>((_, r) => reject = r);
  expired.catch(() => {});
  let cleared = false;
  const fire = () => reject(new TunnelTimeoutError(ms));
  let tick = wheel.add(clock.now() + ms, fire);
  return {
    race: (p) => Promise.race([p, expired]),
    touch() {
      if (cleared) return;
      wheel.remove(tick, fire);
      tick = wheel.add(clock.now() + ms, fire);
    },
    abort() {
      if (!cleared) reject(new TunnelAbortedError());
    },
    clear() {
      if (cleared) return;
      cleared = true;
      wheel.remove(tick, fire);
    },
  };
}
