/**
 * Round-robin between streams with data to send: a stream that filled its turn goes to the back,
 * so one bulk transfer cannot starve small requests.
 */

export interface Schedulable {
  scheduled: boolean;
}

export class RoundRobinScheduler<T extends Schedulable> {
  #queue: T[] = [];
  #head = 0;

  get size(): number {
    return this.#queue.length - this.#head;
  }

  /** Appends a stream unless it is already queued. */
  push(item: T): void {
    if (item.scheduled) return;
    item.scheduled = true;
    this.#queue.push(item);
  }

  /** Puts a stream back at the front (its turn was cut short by a full packet). */
  pushFront(item: T): void {
    if (item.scheduled) return;
    item.scheduled = true;
    if (this.#head > 0) this.#queue[--this.#head] = item;
    else this.#queue.unshift(item);
  }

  /** Takes the stream whose turn it is. */
  pop(): T | undefined {
    if (this.#head >= this.#queue.length) return undefined;
    const item = this.#queue[this.#head];
    // The slot is released now: a finished stream must not wait for a compaction to be collected.
    this.#queue[this.#head++] = undefined as unknown as T;
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
    } else if (this.#head > 64 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    item.scheduled = false;
    return item;
  }
}
