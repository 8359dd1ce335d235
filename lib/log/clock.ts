/**
 * Time, injected: production uses the real clock; tests drive a manual one (tests/support/manual_clock.ts)
 * so loss recovery and retransmission run in simulated time without sleeping.
 */
export type TimerId = number;

export interface Clock {
  /** Milliseconds, monotonic, fractional allowed. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerId;
  clearTimeout(id: TimerId): void;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => performance.now(),
  // Deno's timers return numbers; the cast only quiets @types/node's Timeout when it is in scope.
  setTimeout: (fn, ms) => setTimeout(fn, ms) as unknown as TimerId,
  clearTimeout: (id) => clearTimeout(id),
};
