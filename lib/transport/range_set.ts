/** A set of disjoint half-open integer intervals [start, end), kept sorted; small and allocation-light. */
export class RangeSet {
  #starts: number[] = [];
  #ends: number[] = [];

  get count(): number {
    return this.#starts.length;
  }

  get isEmpty(): boolean {
    return this.#starts.length === 0;
  }

  start(i: number): number {
    return this.#starts[i];
  }

  end(i: number): number {
    return this.#ends[i];
  }

  /** Index of the first interval whose end is ≥ x (so it touches or follows x). */
  #firstEndingAtOrAfter(x: number): number {
    let lo = 0;
    let hi = this.#ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#ends[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** True if x lies in the set. */
  has(x: number): boolean {
    const i = this.#firstEndingAtOrAfter(x + 1);
    return i < this.#starts.length && this.#starts[i] <= x;
  }

  /** Adds [start, end), merging with touching intervals. */
  add(start: number, end: number): void {
    if (end <= start) return;
    const n = this.#starts.length;
    // Fast path: appending at or after the last interval, the common case for in-order data.
    if (n === 0 || start > this.#ends[n - 1]) {
      this.#starts.push(start);
      this.#ends.push(end);
      return;
    }
    if (start === this.#ends[n - 1] && start >= this.#starts[n - 1]) {
      this.#ends[n - 1] = Math.max(end, this.#ends[n - 1]);
      return;
    }
    const i = this.#firstEndingAtOrAfter(start);
    let j = i;
    let s = start;
    let e = end;
    while (j < n && this.#starts[j] <= end) {
      if (this.#starts[j] < s) s = this.#starts[j];
      if (this.#ends[j] > e) e = this.#ends[j];
      j++;
    }
    this.#starts.splice(i, j - i, s);
    this.#ends.splice(i, j - i, e);
  }

  /** Removes [start, end). */
  remove(start: number, end: number): void {
    if (end <= start || this.#starts.length === 0) return;
    let i = this.#firstEndingAtOrAfter(start + 1);
    while (i < this.#starts.length && this.#starts[i] < end) {
      const s = this.#starts[i];
      const e = this.#ends[i];
      if (s < start && e > end) {
        this.#ends[i] = start;
        this.#starts.splice(i + 1, 0, end);
        this.#ends.splice(i + 1, 0, e);
        return;
      }
      if (s < start) {
        this.#ends[i] = start;
        i++;
      } else if (e > end) {
        this.#starts[i] = end;
        return;
      } else {
        this.#starts.splice(i, 1);
        this.#ends.splice(i, 1);
      }
    }
  }

  /** Drops the lowest interval. */
  removeFirst(): void {
    this.#starts.shift();
    this.#ends.shift();
  }

  clear(): void {
    this.#starts.length = 0;
    this.#ends.length = 0;
  }
}
