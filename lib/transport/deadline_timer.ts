/**
 * One clock timer serving many deadlines (loss detection, delayed ACK, pacing, idle, keep-alive, close):
 * it is re-armed only when a deadline moves earlier; a timer that fires early just recomputes.
 */
import type { Clock, TimerId } from "../log/clock.ts";

export class DeadlineTimer {
  #timer: TimerId | undefined;
  #at = Infinity;

  constructor(readonly clock: Clock, readonly onFire: () => void) {}

  /** Makes sure the callback runs at `deadline` or earlier. */
  arm(deadline: number): void {
    if (this.#timer !== undefined && this.#at <= deadline) return;
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#at = deadline;
    this.#timer = this.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#at = Infinity;
      this.onFire();
    }, Math.max(0, Math.ceil(deadline - this.clock.now())));
  }

  stop(): void {
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#at = Infinity;
  }
}
