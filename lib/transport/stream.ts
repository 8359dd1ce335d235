/**
 * One bidirectional stream as the application sees it: Web streams over a SendStream and a
 * ReceiveStream, with backpressure on both sides and reset in both directions (RFC 9000 §3).
 */
import { type ConnectionClosedError, StreamResetError } from "./errors.ts";
import { ReceiveStream } from "./receive_stream.ts";
import { SendStream } from "./send_stream.ts";
import type { StreamConsumer, TransportStream } from "./types.ts";

/** What a stream needs from its connection. */
export interface StreamHost {
  now(): number;
  smoothedRtt(): number;
  /** The stream has data or a control frame to send. */
  wake(stream: Stream): void;
  /** The application consumed (or the stream discarded) n bytes: connection-level credit. */
  onConsumed(stream: Stream, n: number): void;
  /** Both halves are finished: the connection may forget the stream. */
  onTerminated(stream: Stream): void;
  /** Sends now what a queued flush would send (data written just before a reset). */
  flushPending(): void;
}

export interface StreamWindows {
  /** The peer's initial limit on what we send. */
  sendLimit: number;
  receiveWindow: number;
  maxReceiveWindow: number;
  /** How far past the peer's credit writes are accepted before backpressure. */
  sendSlack: number;
}

export class Stream implements TransportStream {
  readonly done: Promise<void>;
  readonly send: SendStream;
  readonly recv: ReceiveStream;
  /** In the scheduler's queue. */
  scheduled = false;
  /** Control frames owed to the peer. */
  needsMaxStreamData = false;
  needsResetStream = false;
  stopSendingCode: number | undefined;
  needsStopSending = false;
  resetAcked = false;
  #consumer: StreamConsumer | undefined;
  #paused = false;
  #delivering = false;
  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;
  #writeController: WritableStreamDefaultController | undefined;
  #drainCallback: (() => void) | undefined;
  #drainWanted = false;
  #writeErrorCallback: ((error: unknown) => void) | undefined;
  #writeWaiter: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  #readError: unknown;
  #readClosed = false;
  #writeError: unknown;
  #recvDone = false;
  #discarding = false;
  #terminated = false;
  #doneResolved = false;
  #resolveDone!: () => void;
  readonly #sendSlack: number;

  constructor(readonly id: number, readonly host: StreamHost, w: StreamWindows) {
    this.send = new SendStream(w.sendLimit);
    this.recv = new ReceiveStream(w.receiveWindow, w.maxReceiveWindow, host.now());
    this.#sendSlack = w.sendSlack;
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
  }

  // --- reading: callbacks (the data path), or a Web ReadableStream built on them ---

  /** Starts pushing in-order bytes to `consumer` (once per stream). */
  read(consumer: StreamConsumer): void {
    if (this.#consumer !== undefined) throw new Error("stream: the receive half already has a reader");
    this.#consumer = consumer;
    this.#deliver();
  }

  /** Stops delivery until resumeReading (the reader's backpressure; credit stops with it). */
  pauseReading(): void {
    this.#paused = true;
  }

  resumeReading(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#deliver();
  }

  /** The application no longer reads: buffered data is dropped and the peer asked to stop (STOP_SENDING). */
  stopReading(code: number): void {
    if (this.#recvDone || this.#discarding) return;
    this.#readClosed = true;
    this.#stopSending(code);
  }

  get readable(): ReadableStream<Uint8Array> {
    if (this.#readable === undefined) {
      this.#readable = new ReadableStream<Uint8Array>({
        start: (c) => {
          this.#paused = true;
          this.read({
            data: (chunk) => {
              c.enqueue(chunk);
              if ((c.desiredSize ?? 0) <= 0) this.#paused = true;
            },
            end: () => c.close(),
            error: (e) => c.error(e),
          });
        },
        pull: () => this.resumeReading(),
        cancel: (reason) => this.stopReading(reason instanceof StreamResetError ? reason.errorCode : 0),
      }, { highWaterMark: 0 });
    }
    return this.#readable;
  }

  /** Hands the reader what can go now: chunks until paused, then the end or the error. */
  #deliver(): void {
    const c = this.#consumer;
    if (c === undefined || this.#readClosed || this.#delivering) return;
    this.#delivering = true;
    try {
      if (this.#readError !== undefined) {
        this.#readClosed = true;
        c.error(this.#readError);
        return;
      }
      while (!this.#paused) {
        const chunk = this.recv.read();
        if (chunk === undefined) break;
        this.#consumed(chunk.length);
        c.data(chunk);
        if (this.#readClosed) return;
        if (this.#readError !== undefined) {
          this.#readClosed = true;
          c.error(this.#readError);
          return;
        }
      }
      if (this.recv.allRead) {
        this.#readClosed = true;
        c.end();
        this.#setRecvDone();
      }
    } finally {
      this.#delivering = false;
    }
  }

  #consumed(n: number): void {
    const update = this.recv.window.onConsumed(n, this.host.now(), this.host.smoothedRtt());
    // Once the final size is known (FIN or reset seen) the peer needs no more credit for this stream.
    if (update !== undefined && this.recv.finalSize === undefined) {
      this.needsMaxStreamData = true;
      this.host.wake(this);
    }
    this.host.onConsumed(this, n);
  }

  /** Fails the reader with `error` (at once if it is waiting, else on its next delivery). */
  #failReader(error: unknown): void {
    if (this.#readClosed) return;
    this.#readError = error;
    if (this.#consumer === undefined) return;
    this.#readClosed = true;
    this.#consumer.error(error);
  }

  /**
   * The application stops reading: drop what is buffered and ask the peer to stop (RFC 9000 §3.5). The
   * receive half is done once the final size is known, so connection credit is settled up to it.
   */
  #stopSending(code: number): void {
    this.#discarding = true;
    this.#releaseReceived();
    if (!this.recv.allReceived) {
      this.stopSendingCode = code;
      this.needsStopSending = true;
      this.host.wake(this);
    }
    if (this.recv.finalSize !== undefined) this.#setRecvDone();
  }

  /** Counts every byte received so far as consumed (connection credit) and drops the buffers. */
  #releaseReceived(): void {
    const w = this.recv.window;
    const unconsumed = w.highestReceived - w.consumed;
    this.recv.discardAll();
    if (unconsumed > 0) {
      w.consumed += unconsumed;
      this.host.onConsumed(this, unconsumed);
    }
  }

  /** True once the application stopped reading: later data is only counted as consumed, not kept. */
  get discarding(): boolean {
    return this.#discarding;
  }

  // --- writing: callbacks (the data path), or a Web WritableStream built on them ---

  #canAccept(): boolean {
    return this.send.writeOffset < this.send.credit.limit + this.#sendSlack;
  }

  /**
   * Queues a chunk (kept by reference until acknowledged); false when the stream holds more than the
   * peer's credit allows: wait for onDrain. After a reset or a failure the chunk is dropped.
   */
  write(chunk: Uint8Array): boolean {
    if (this.#writeError !== undefined || this.send.finRequested) return false;
    if (chunk.length > 0) {
      this.send.push(chunk);
      this.host.wake(this);
    }
    if (this.#canAccept()) return true;
    this.#drainWanted = true;
    return false;
  }

  /** Called each time the stream can take writes again after `write` returned false. */
  onDrain(callback: () => void): void {
    this.#drainCallback = callback;
  }

  /** Called once if the sending half fails (the peer's STOP_SENDING, a reset, the connection's end). */
  onWriteError(callback: (error: unknown) => void): void {
    this.#writeErrorCallback = callback;
    if (this.#writeError !== undefined) callback(this.#writeError);
  }

  /** Sends FIN after what was written. */
  finish(): void {
    if (this.#writeError !== undefined || this.send.finRequested) return;
    this.send.finish();
    this.host.wake(this);
  }

  get writable(): WritableStream<Uint8Array> {
    if (this.#writable === undefined) {
      this.#writable = new WritableStream<Uint8Array>({
        start: (c) => {
          this.#writeController = c;
        },
        write: (chunk) => {
          if (this.#writeError !== undefined) throw this.#writeError;
          if (!(chunk instanceof Uint8Array)) throw new TypeError("stream chunks must be Uint8Array");
          if (this.write(chunk)) return;
          return new Promise((resolve, reject) => (this.#writeWaiter = { resolve, reject }));
        },
        close: () => {
          if (this.#writeError !== undefined) throw this.#writeError;
          this.finish();
        },
        abort: (reason) => this.#resetSend(reason instanceof StreamResetError ? reason.errorCode : 0),
      });
    }
    return this.#writable;
  }

  #notifyDrain(): void {
    if (!this.#drainWanted || !this.#canAccept()) return;
    this.#drainWanted = false;
    const w = this.#writeWaiter;
    this.#writeWaiter = undefined;
    w?.resolve();
    this.#drainCallback?.();
  }

  #resetSend(code: number): void {
    if (this.send.resetCode !== undefined || this.send.isComplete) return;
    // Data written before the reset but still waiting for the coalesced flush goes first: the peer then
    // learns what the stream was (a request head) before it is reset, as if the flush had been immediate.
    if (this.send.sentOffset < this.send.writeOffset) this.host.flushPending();
    this.send.abandon(code);
    this.needsResetStream = true;
    this.host.wake(this);
  }

  #failWriter(error: unknown): void {
    if (this.#writeError !== undefined) return;
    this.#writeError = error;
    this.#writeWaiter?.reject(error);
    this.#writeWaiter = undefined;
    try {
      this.#writeController?.error(error);
    } catch { /* already errored or closed */ }
    this.#writeErrorCallback?.(error);
  }

  // --- events from the connection ---

  /** STREAM frame data arrived (already checked by the connection for limits). */
  onData(offset: number, data: Uint8Array, fin: boolean): void {
    const discard = this.#recvDone || this.#discarding;
    this.recv.onData(offset, data, fin, discard);
    if (!discard) this.#deliver();
    else if (this.#discarding && this.recv.finalSize !== undefined) this.#setRecvDone();
  }

  /** The peer raised our credit. */
  onMaxStreamData(limit: number): void {
    if (!this.send.credit.update(limit)) return;
    this.host.wake(this);
    this.#notifyDrain();
  }

  /** The peer reset its sending half (RESET_STREAM). */
  onResetStream(errorCode: number, finalSize: number): void {
    this.recv.onReset(finalSize);
    if (this.#recvDone) return;
    if (this.#discarding) {
      this.#setRecvDone(); // the connection counts the bytes up to the final size as consumed
      return;
    }
    this.#releaseReceived();
    this.#failReader(new StreamResetError(errorCode, true));
    this.#finish();
    this.#setRecvDone();
  }

  /** The peer asked us to stop sending (STOP_SENDING): answer with RESET_STREAM (RFC 9000 §3.5). */
  onStopSending(errorCode: number): void {
    this.#failWriter(new StreamResetError(errorCode, true));
    this.#resetSend(errorCode);
    this.#finish();
    this.checkTerminated();
  }

  /** A sent STREAM frame was acknowledged. */
  onFrameAcked(offset: number, length: number, fin: boolean): void {
    this.send.onAcked(offset, length, fin);
    if (this.send.isComplete) this.checkTerminated();
  }

  /** Abandons both directions with an application error code. */
  reset(code: number): void {
    const error = new StreamResetError(code, false);
    this.#failWriter(error);
    this.#resetSend(code);
    if (!this.#recvDone && !this.#discarding) {
      this.#failReader(error);
      this.#stopSending(code);
    }
    this.#finish();
    this.checkTerminated();
  }

  /** The connection ended: whatever is incomplete errors; fully received data stays readable. */
  onConnectionClosed(error: ConnectionClosedError): void {
    this.#failWriter(error);
    if (!this.#recvDone && !this.recv.allReceived) {
      this.recv.discardAll();
      this.#failReader(error);
    }
    this.#finish();
  }

  #setRecvDone(): void {
    if (this.#recvDone) return;
    this.#recvDone = true;
    this.checkTerminated();
  }

  /** Both halves finished: the send side acknowledged (or reset and the reset acknowledged) and the receive side done. */
  checkTerminated(): void {
    if (this.#terminated || !this.#recvDone) return;
    const sendDone = this.send.isComplete || (this.send.resetCode !== undefined && this.resetAcked);
    if (!sendDone) return;
    this.#terminated = true;
    this.#finish();
    this.host.onTerminated(this);
  }

  /** Resolves `done`: both halves finished, or the stream was reset, or the connection ended. */
  #finish(): void {
    if (this.#doneResolved) return;
    this.#doneResolved = true;
    this.#resolveDone();
  }

  get terminated(): boolean {
    return this.#terminated;
  }

  /** Bytes the send side holds (unsent and unacknowledged). */
  get sendBufferedBytes(): number {
    return this.send.bufferedBytes;
  }
}
