/**
 * The open streams by id, without a Map. Once a Map has lived through two scavenges, V8 allocates each
 * table it rehashes into in old space, and the table it replaces still points at the streams it held
 * until the next full collection. The scavenger takes those stale pointers as live, so nearly every
 * short-lived stream, and everything it referenced, was copied and promoted: 4 MB per scavenge and
 * 8–15 ms pauses on a client at 10 000 requests/s (measured with --trace-gc-nvp).
 *
 * Stream ids of one initiator are sequential (RFC 9000 §2.1), so each initiator's streams sit in an
 * array indexed by id order, a slot cleared when its stream ends and the array compacted in place.
 * A stream that stays open while many newer ones come and go (the control stream, a WebSocket, a long
 * download) is moved aside into a small Map, where the churn that made the trouble does not happen.
 */
import type { Stream } from "./stream.ts";

/** First ring size per initiator (slots; grows by doubling while more than half of it is in use). */
const INITIAL_SLOTS = 64;

/**
 * One initiator's streams in a ring of slots: stream index k sits at slots[k & mask] for base <= k < next.
 * The ring never changes size behind our back (no push): when it grows, the old one is emptied, so no
 * abandoned array keeps pointing at live streams.
 */
class Run {
  slots: (Stream | undefined)[] = new Array(INITIAL_SLOTS).fill(undefined);
  mask = INITIAL_SLOTS - 1;
  /** Oldest stream index that may still be in the ring. */
  base = 0;
  /** One past the newest stream index added. */
  next = 0;
  live = 0;
}

export class StreamTable {
  #runs: [Run, Run] = [new Run(), new Run()];
  /** Long-lived streams moved out of their ring to make room. */
  #aside = new Map<number, Stream>();

  get size(): number {
    return this.#runs[0].live + this.#runs[1].live + this.#aside.size;
  }

  get(id: number): Stream | undefined {
    const run = this.#runs[id & 1];
    const k = id >>> 2;
    if (k >= run.next) return undefined;
    return k < run.base ? this.#aside.get(id) : run.slots[k & run.mask];
  }

  /** Adds a stream; ids of one initiator must come in increasing order (skipped ids stay empty). */
  set(id: number, s: Stream): void {
    const bit = id & 1;
    const run = this.#runs[bit];
    const k = id >>> 2;
    if (k < run.next) throw new Error(`stream ${id} added out of order`);
    while (k - run.base >= run.slots.length) this.#makeRoom(run, bit, k);
    run.slots[k & run.mask] = s;
    run.next = k + 1;
    run.live++;
  }

  /** Removes a stream; false if it was not there. */
  delete(id: number): boolean {
    const run = this.#runs[id & 1];
    const k = id >>> 2;
    if (k >= run.next) return false;
    if (k < run.base) return this.#aside.delete(id);
    const i = k & run.mask;
    if (run.slots[i] === undefined) return false;
    run.slots[i] = undefined;
    run.live--;
    while (run.base < run.next && run.slots[run.base & run.mask] === undefined) run.base++;
    return true;
  }

  *values(): IterableIterator<Stream> {
    yield* this.#aside.values();
    for (const run of this.#runs) {
      for (let k = run.base; k < run.next; k++) {
        const s = run.slots[k & run.mask];
        if (s !== undefined) yield s;
      }
    }
  }

  /**
   * Index k does not fit: a ring more than half in use doubles; otherwise the oldest live streams, which
   * hold the window open while newer ones come and go, are moved aside.
   */
  #makeRoom(run: Run, bit: number, k: number): void {
    const size = run.slots.length;
    if (run.live * 2 > size) {
      const slots = new Array(size * 2).fill(undefined);
      for (let j = run.base; j < run.next; j++) slots[j & (size * 2 - 1)] = run.slots[j & run.mask];
      run.slots.fill(undefined);
      run.slots = slots;
      run.mask = size * 2 - 1;
      return;
    }
    while (run.base < run.next && k - run.base >= size) {
      const i = run.base & run.mask;
      const s = run.slots[i];
      if (s !== undefined) {
        this.#aside.set(run.base * 4 + bit, s);
        run.slots[i] = undefined;
        run.live--;
      }
      run.base++;
    }
    if (run.base === run.next) run.base = k;
  }
}
