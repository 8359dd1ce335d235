/**
 * Simulated time for tests: timers fire only when the test advances the clock, or when drive and
 * driveFor run it forward, timer by timer, letting in-memory I/O settle in between.
 */
import { setImmediate } from "node:timers";
import type { Clock, TimerId } from "../../lib/log/clock.ts";

/** A clock that moves only when told; timers fire in time order during advance(). */
export class ManualClock implements Clock {
  #now = 0;
  #nextId = 1;
  #timers = new Map<TimerId, { at: number; fn: () => void }>();

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerId {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(id: TimerId): void {
    this.#timers.delete(id);
  }

  /** The time of the earliest pending timer, or undefined. */
  nextTimerAt(): number | undefined {
    let min: number | undefined;
    for (const t of this.#timers.values()) if (min === undefined || t.at < min) min = t.at;
    return min;
  }

  /** Moves time forward by ms, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let nextId: TimerId | undefined;
      let next: { at: number; fn: () => void } | undefined;
      for (const [id, t] of this.#timers) {
        if (t.at <= target && (next === undefined || t.at < next.at)) {
          next = t;
          nextId = id;
        }
      }
      if (next === undefined || nextId === undefined) break;
      this.#timers.delete(nextId);
      this.#now = Math.max(this.#now, next.at);
      next.fn();
    }
    this.#now = target;
  }
}

/**
 * Yields one event-loop turn so every pending microtask (stream reads and writes) runs first.
 * setImmediate is a real macrotask and not clamped like a nested setTimeout(0); a MessageChannel
 * message is not a full turn in Deno.
 */
export function macrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Runs simulated time until `work` settles; fails past maxSimMs of simulated time. `turns`: event-loop
 * turns to let pass before each step, more than one when connections defer flushes with setImmediate.
 */
export async function drive<T>(
  clock: ManualClock,
  work: Promise<T>,
  maxSimMs = 600_000,
  turns = 1,
): Promise<T> {
  let settled = false;
  work.then(() => (settled = true), () => (settled = true));
  const limit = clock.now() + maxSimMs;
  let idle = 0;
  await loop();
  return await work;

  async function loop(): Promise<void> {
    while (!settled) {
      for (let i = 0; i < turns; i++) await macrotask();
      if (settled) break;
      const next = clock.nextTimerAt();
      if (next === undefined) {
        if (++idle > 1000) throw new Error("simulation stalled: no timers and the work has not settled");
        continue;
      }
      idle = 0;
      if (next > limit) throw new Error(`simulation exceeded ${maxSimMs} ms of simulated time`);
      clock.advance(Math.max(0, next - clock.now()));
    }
  }
}

/** Runs simulated time for `ms`, letting microtasks settle at each step. */
export async function driveFor(clock: ManualClock, ms: number): Promise<void> {
  const until = clock.now() + ms;
  for (;;) {
    await macrotask();
    const next = clock.nextTimerAt();
    if (next === undefined || next > until) break;
    clock.advance(Math.max(0, next - clock.now()));
  }
  await macrotask();
  clock.advance(Math.max(0, until - clock.now()));
  await macrotask();
}
