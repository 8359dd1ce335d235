/** Simulated time for tests: timers fire only when the test advances the clock. */
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

  /**
   * Moves time forward by ms in steps of stepMs, letting the event loop run between steps: code
   * that awaits in-memory I/O between timers (a PING answered by PONG) then sees time pass as it
   * would, each exchange settling within one step.
   */
  async run(ms: number, stepMs = 10): Promise<void> {
    const target = this.#now + ms;
    while (this.#now < target) {
      await settle();
      this.advance(Math.min(stepMs, target - this.#now));
    }
    await settle();
  }

  /**
   * Runs time forward (as run) until `done()` holds, for at most limitMs; returns the clock's time
   * when it first held, or undefined if it never did.
   */
  async runUntil(done: () => boolean, limitMs: number, stepMs = 10): Promise<number | undefined> {
    const limit = this.#now + limitMs;
    for (;;) {
      await settle();
      if (done()) return this.#now;
      if (this.#now >= limit) return undefined;
      this.advance(Math.min(stepMs, limit - this.#now));
    }
  }
}

/** One turn of the event loop: every pending promise continuation runs (in-memory connections settle). */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
