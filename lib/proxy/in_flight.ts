/**
 * Work in progress, counted, and who waits for it to end: the gateway's requests (a server's drain) and a
 * tunnel's streams (a client's retirement). A count, not a Set of the work's promises: a Set with an entry
 * per request rehashes into old-space tables that keep finished requests alive through scavenges (see
 * lib/transport/stream_table.ts).
 */
export class InFlight {
  #count = 0;
  #waiters: (() => void)[] = [];

  get size(): number {
    return this.#count;
  }

  /** Counts `work` until it settles (its outcome is the caller's; a rejection is not reported here). */
  track(work: Promise<unknown>): void {
    this.#count++;
    work.then(this.#end, this.#end);
  }

  /** Resolves once nothing is in progress, or after `ms`, whichever comes first. */
  drained(ms = Infinity): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(resolve, ms) : undefined;
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  readonly #end = (): void => {
    if (--this.#count > 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  };
}
