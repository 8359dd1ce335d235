/**
 * The receiving half of a stream (RFC 9000 §3.2, §2.2): reassembly of out-of-order frames into
 * in-order chunks (views of the received packets, no copy), final size and flow-control checks.
 */
import { TransportError, TransportErrorCode } from "./errors.ts";
import { ReceiveWindow } from "./flow_control.ts";

interface Segment {
  offset: number;
  data: Uint8Array;
}

export class ReceiveStream {
  readonly window: ReceiveWindow;
  finalSize: number | undefined;
  /** Bytes ready for the application. */
  readyBytes = 0;
  #ready: Uint8Array[] = [];
  #readyHead = 0;
  #pending: Segment[] = [];
  #receivedOffset = 0;

  constructor(windowSize: number, maxWindowSize: number, now: number) {
    this.window = new ReceiveWindow(windowSize, maxWindowSize, now);
  }

  /** All data up to the final size has arrived. */
  get allReceived(): boolean {
    return this.finalSize !== undefined && this.#receivedOffset === this.finalSize;
  }

  /** All data was handed to the application. */
  get allRead(): boolean {
    return this.allReceived && this.readyBytes === 0;
  }

  /** RFC 9000 §4.5: checks a frame's end against the final size; sets it on FIN. */
  #checkFinalSize(end: number, fin: boolean): void {
    if (this.finalSize !== undefined && (end > this.finalSize || (fin && end !== this.finalSize))) {
      throw new TransportError(
        TransportErrorCode.FINAL_SIZE_ERROR,
        `data at ${end} past final size ${this.finalSize}`,
      );
    }
    if (fin) {
      if (end < this.window.highestReceived) {
        throw new TransportError(
          TransportErrorCode.FINAL_SIZE_ERROR,
          `final size ${end} below data received`,
        );
      }
      this.finalSize = end;
    }
    if (!this.window.onReceived(end)) {
      throw new TransportError(
        TransportErrorCode.FLOW_CONTROL_ERROR,
        `stream data to ${end} exceeds the limit ${this.window.limit}`,
      );
    }
  }

  /** Takes a STREAM frame; `discard` keeps the accounting but drops the bytes (after STOP_SENDING). */
  onData(offset: number, data: Uint8Array, fin: boolean, discard: boolean): void {
    const end = offset + data.length;
    this.#checkFinalSize(end, fin);
    if (discard || end <= this.#receivedOffset) return;
    if (offset <= this.#receivedOffset) {
      this.#append(data.subarray(this.#receivedOffset - offset));
      this.#receivedOffset = end;
      this.#drainPending();
      return;
    }
    this.#insertPending(offset, data);
  }

  /** RFC 9000 §3.2: a RESET_STREAM's final size must agree with what arrived. */
  onReset(finalSize: number): void {
    this.#checkFinalSize(finalSize, true);
  }

  #append(data: Uint8Array): void {
    if (data.length === 0) return;
    this.#ready.push(data);
    this.readyBytes += data.length;
  }

  #insertPending(offset: number, data: Uint8Array): void {
    const p = this.#pending;
    let lo = 0;
    let hi = p.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (p[mid].offset < offset) lo = mid + 1;
      else hi = mid;
    }
    if (lo < p.length && p[lo].offset === offset) {
      if (p[lo].data.length < data.length) p[lo].data = data;
      return;
    }
    p.splice(lo, 0, { offset, data });
  }

  #drainPending(): void {
    const p = this.#pending;
    let n = 0;
    while (n < p.length && p[n].offset <= this.#receivedOffset) {
      const seg = p[n++];
      const end = seg.offset + seg.data.length;
      if (end > this.#receivedOffset) {
        this.#append(seg.data.subarray(this.#receivedOffset - seg.offset));
        this.#receivedOffset = end;
      }
    }
    if (n > 0) p.splice(0, n);
  }

  /** The next in-order chunk, or undefined. */
  read(): Uint8Array | undefined {
    if (this.#readyHead >= this.#ready.length) return undefined;
    const chunk = this.#ready[this.#readyHead++];
    this.readyBytes -= chunk.length;
    if (this.#readyHead === this.#ready.length) {
      this.#ready.length = 0;
      this.#readyHead = 0;
    } else if (this.#readyHead > 1024) {
      this.#ready = this.#ready.slice(this.#readyHead);
      this.#readyHead = 0;
    }
    return chunk;
  }

  /** Drops everything buffered. */
  discardAll(): void {
    this.#ready = [];
    this.#readyHead = 0;
    this.readyBytes = 0;
    this.#pending = [];
  }
}
