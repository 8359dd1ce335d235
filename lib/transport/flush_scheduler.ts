/**
 * When the send loop runs outside of an incoming datagram or a timer: after a burst of writes (a few
 * microtask hops later), or on the next event-loop turn for sub-millisecond pacing.
 */

/** Microtask hops a queued flush waits: `await writer.write()` twice and `close()` take about 8. */
const FLUSH_MICROTASK_HOPS = 16;

export class FlushScheduler {
  #queued = false;
  #hops = 0;
  #immediateQueued = false;
  readonly #flush: () => void;
  readonly #immediate: ((fn: () => void) => void) | undefined;

  /** `immediate` runs a function on the next event-loop turn (setImmediate), if there is one. */
  constructor(flush: () => void, immediate: ((fn: () => void) => void) | undefined) {
    this.#flush = flush;
    this.#immediate = immediate;
  }

  get queued(): boolean {
    return this.#queued;
  }

  /** Sub-millisecond waits can resume on the next turn instead of a timer. */
  get canResumeSoon(): boolean {
    return this.#immediate !== undefined;
  }

  /**
   * Writes made in one burst share packets: a head, its body and the FIN written with several awaits
   * leave together. The flush waits a few microtask hops for such await chains to settle, but stays in
   * the same macrotask (a later event, such as a browser's abort, still finds the data sent). Correctness
   * does not depend on when this runs.
   */
  queue(): void {
    if (this.#queued) return;
    this.#queued = true;
    this.#hops = FLUSH_MICROTASK_HOPS;
    queueMicrotask(this.#onMicrotask);
  }

  readonly #onMicrotask = (): void => {
    if (--this.#hops > 0) {
      queueMicrotask(this.#onMicrotask);
      return;
    }
    this.#queued = false;
    this.#flush();
  };

  /** Sub-millisecond pacing: resume on the next event-loop turn, after incoming datagrams are read. */
  resumeSoon(): void {
    if (this.#immediateQueued) return;
    this.#immediateQueued = true;
    this.#immediate!(() => {
      this.#immediateQueued = false;
      this.#flush();
    });
  }
}
