/**
 * The anti-replay sliding window of RFC 6347 §4.1.2.6 (after RFC 4303 §3.4.3): a record is
 * accepted once if it is newer than the right edge or falls inside the window unseen. Mark a
 * record only after it authenticates, so forged records cannot move the window.
 */
export const DEFAULT_REPLAY_WINDOW = 256;

export class ReplayWindow {
  readonly size: number;
  #bits: Uint32Array;
  /** Highest sequence number accepted so far; -1 before the first. */
  #max = -1;

  constructor(size = DEFAULT_REPLAY_WINDOW) {
    if (size < 64 || size % 32 !== 0) {
      throw new RangeError("replay window size must be a multiple of 32, at least 64");
    }
    this.size = size;
    this.#bits = new Uint32Array(size / 32);
  }

  get highest(): number {
    return this.#max;
  }

  /** True when a record with this sequence number has not been seen and is not too old. */
  mayAccept(seq: number): boolean {
    if (seq > this.#max) return true;
    if (this.#max - seq >= this.size) return false;
    return !this.#test(seq);
  }

  /** Records an authenticated record's sequence number. */
  accept(seq: number): void {
    if (seq > this.#max) {
      if (seq - this.#max >= this.size) this.#bits.fill(0);
      else for (let s = this.#max + 1; s < seq; s++) this.#clear(s);
      this.#max = seq;
    }
    this.#set(seq);
  }

  #index(seq: number): [number, number] {
    const slot = seq % this.size;
    return [slot >>> 5, 1 << (slot & 31)];
  }
  #test(seq: number): boolean {
    const [w, m] = this.#index(seq);
    return (this.#bits[w] & m) !== 0;
  }
  #set(seq: number): void {
    const [w, m] = this.#index(seq);
    this.#bits[w] |= m;
  }
  #clear(seq: number): void {
    const [w, m] = this.#index(seq);
    this.#bits[w] &= ~m;
  }
}
