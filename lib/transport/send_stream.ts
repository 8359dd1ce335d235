/**
 * The sending half of a stream (RFC 9000 §3.1, §2.2): the application's chunks kept by reference
 * until acknowledged, new data and lost ranges handed to the packer, FIN and RESET_STREAM state.
 */
import { SendCredit } from "./flow_control.ts";
import { streamFrameHeaderLength, writeStreamFrameHeader } from "./frames/stream.ts";
import { RangeSet } from "./range_set.ts";
import type { BufferWriter } from "./varint.ts";

/** What one STREAM frame carried, as the sent-packet record keeps it. */
export interface StreamFrameMeta {
  offset: number;
  length: number;
  fin: boolean;
  /** Bytes of first transmission (they count against connection credit). */
  newBytes: number;
}

export class SendStream {
  readonly credit: SendCredit;
  /** Bytes accepted from the application. */
  writeOffset = 0;
  /** Contiguous prefix the peer acknowledged. */
  ackedOffset = 0;
  #chunks: (Uint8Array | undefined)[] = [];
  #starts: number[] = [];
  #head = 0;
  #sendOffset = 0;
  #acked = new RangeSet();
  #lost = new RangeSet();
  #finRequested = false;
  #finSent = false;
  #finLost = false;
  #finAcked = false;
  /** Set once the stream is reset: the error code to send. */
  resetCode: number | undefined;

  constructor(peerMaxStreamData: number) {
    this.credit = new SendCredit(peerMaxStreamData);
  }

  /** Highest offset ever transmitted: the final size a RESET_STREAM reports. */
  get sentOffset(): number {
    return this.#sendOffset;
  }

  get finRequested(): boolean {
    return this.#finRequested;
  }

  /** Bytes held: unsent plus sent-but-unacknowledged (whole chunks). */
  get bufferedBytes(): number {
    return this.#head < this.#chunks.length ? this.writeOffset - this.#starts[this.#head] : 0;
  }

  /** Every byte and the FIN acknowledged. */
  get isComplete(): boolean {
    return this.#finAcked && this.ackedOffset === this.writeOffset;
  }

  /** Nothing buffered awaits an acknowledgement (a graceful close may proceed). */
  get isSettled(): boolean {
    return this.resetCode !== undefined ||
      (this.ackedOffset === this.writeOffset && (!this.#finRequested || this.#finAcked));
  }

  /** Takes the chunk by reference: the caller must not modify it afterwards. */
  push(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#starts.push(this.writeOffset);
    this.writeOffset += chunk.length;
  }

  finish(): void {
    this.#finRequested = true;
  }

  /** Drops all data: the stream was reset. */
  abandon(code: number): void {
    this.resetCode = code;
    this.#chunks = [];
    this.#starts = [];
    this.#head = 0;
    this.#lost.clear();
  }

  /** Something could go into a STREAM frame now, given `connAvailable` bytes of connection credit. */
  hasData(connAvailable: number): boolean {
    if (this.resetCode !== undefined) return false;
    if (!this.#lost.isEmpty) return true;
    if (this.#sendOffset < Math.min(this.writeOffset, this.credit.limit) && connAvailable > 0) return true;
    return this.#finRequested && (!this.#finSent || this.#finLost) && this.#sendOffset === this.writeOffset;
  }

  /** Only new data is pending and connection credit is what stops it. */
  blockedOnConnection(connAvailable: number): boolean {
    return connAvailable <= 0 && this.#lost.isEmpty && !this.#finLost &&
      this.#sendOffset < this.writeOffset &&
      this.#sendOffset < this.credit.limit;
  }

  /** Writes one STREAM frame of at most maxBytes (header included); lost data first. */
  writeFrame(
    w: BufferWriter,
    streamId: number,
    maxBytes: number,
    connAvailable: number,
  ): StreamFrameMeta | undefined {
    if (this.resetCode !== undefined) return undefined;
    if (!this.#lost.isEmpty) {
      const start = this.#lost.start(0);
      const hdr = streamFrameHeaderLength(streamId, start, Math.min(this.#lost.end(0) - start, maxBytes));
      if (maxBytes <= hdr) return undefined;
      const length = Math.min(this.#lost.end(0) - start, maxBytes - hdr);
      const fin = this.#finLost && start + length === this.writeOffset;
      if (fin) this.#finLost = false;
      this.#lost.remove(start, start + length);
      this.#emit(w, streamId, start, length, fin);
      return { offset: start, length, fin, newBytes: 0 };
    }
    const offset = this.#sendOffset;
    const room = Math.max(0, Math.min(this.writeOffset, this.credit.limit) - offset);
    const allowed = Math.min(room, Math.max(0, connAvailable));
    if (allowed === 0) {
      // Only a FIN (first or lost) with no data left to send: it goes alone at the final size.
      const finPending = this.#finRequested && (!this.#finSent || this.#finLost);
      if (!finPending || offset !== this.writeOffset) return undefined;
      if (maxBytes < streamFrameHeaderLength(streamId, offset, 0)) return undefined;
      this.#finSent = true;
      this.#finLost = false;
      this.#emit(w, streamId, offset, 0, true);
      return { offset, length: 0, fin: true, newBytes: 0 };
    }
    const hdr = streamFrameHeaderLength(streamId, offset, Math.min(allowed, maxBytes));
    if (maxBytes <= hdr) return undefined;
    const length = Math.min(allowed, maxBytes - hdr);
    const fin = this.#finRequested && offset + length === this.writeOffset;
    if (fin) {
      this.#finSent = true;
      this.#finLost = false;
    }
    this.#sendOffset += length;
    this.credit.used = this.#sendOffset;
    this.#emit(w, streamId, offset, length, fin);
    return { offset, length, fin, newBytes: length };
  }

  #emit(w: BufferWriter, streamId: number, offset: number, length: number, fin: boolean): void {
    writeStreamFrameHeader(w, streamId, offset, length, fin);
    if (length > 0) this.#copy(w.bytes, w.pos, offset, length);
    w.pos += length;
  }

  /** Copies stream bytes [offset, offset + length) into dst: the one copy on the send path. */
  #copy(dst: Uint8Array, at: number, offset: number, length: number): void {
    let lo = this.#head;
    let hi = this.#starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.#starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    let i = lo;
    while (length > 0) {
      const chunk = this.#chunks[i]!;
      const from = offset - this.#starts[i];
      const n = Math.min(chunk.length - from, length);
      dst.set(n === chunk.length ? chunk : chunk.subarray(from, from + n), at);
      at += n;
      offset += n;
      length -= n;
      i++;
    }
  }

  /** A frame was acknowledged; releases chunks below the acknowledged prefix. */
  onAcked(offset: number, length: number, fin: boolean): void {
    if (fin) this.#finAcked = true;
    if (this.resetCode !== undefined || length === 0) return;
    this.#acked.add(offset, offset + length);
    this.#lost.remove(offset, offset + length);
    if (this.#acked.start(0) === 0 && this.#acked.end(0) > this.ackedOffset) {
      this.ackedOffset = this.#acked.end(0);
      this.#release();
    }
  }

  #release(): void {
    const chunks = this.#chunks;
    while (
      this.#head < chunks.length && this.#starts[this.#head] + chunks[this.#head]!.length <= this.ackedOffset
    ) {
      chunks[this.#head] = undefined;
      this.#head++;
    }
    if (this.#head > 256 && this.#head * 2 > chunks.length) {
      this.#chunks = chunks.slice(this.#head);
      this.#starts = this.#starts.slice(this.#head);
      this.#head = 0;
    }
  }

  /** A frame was lost: its unacknowledged parts go back to the front of the queue. */
  onLost(offset: number, length: number, fin: boolean): void {
    if (this.resetCode !== undefined) return;
    if (fin && !this.#finAcked) this.#finLost = true;
    const start = Math.max(offset, this.ackedOffset);
    const end = offset + length;
    if (end <= start) return;
    this.#lost.add(start, end);
    for (let i = 0; i < this.#acked.count; i++) {
      if (this.#acked.start(i) >= end) break;
      if (this.#acked.end(i) > start) this.#lost.remove(this.#acked.start(i), this.#acked.end(i));
    }
  }
}
