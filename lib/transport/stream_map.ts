/**
 * Stream ids and stream limits (RFC 9000 §2.1, §4.6): bidirectional ids 4n (client) and 4n + 1 (server),
 * peer streams opened implicitly in id order, MAX_STREAMS credit returned as peer streams finish.
 */
import { TransportError, TransportErrorCode } from "./errors.ts";
import type { Stream } from "./stream.ts";
import { StreamTable } from "./stream_table.ts";

/** The stream limit each side assumes until the peer's MAX_STREAMS arrives. */
export const INITIAL_MAX_STREAMS = 100;

export class StreamMap {
  readonly streams = new StreamTable();
  /** Limit on peer-initiated streams we advertised. */
  advertisedMaxStreams = INITIAL_MAX_STREAMS;
  #localOpened = 0;
  #peerMaxStreams = INITIAL_MAX_STREAMS;
  #peerOpened = 0;
  #peerClosed = 0;
  #openWaiters: { resolve: (s: Stream) => void; reject: (e: unknown) => void }[] = [];
  readonly #localBit: number;
  /** The application's handler of peer streams; those the peer opens before it is set wait here. */
  #handler: ((s: Stream) => void) | undefined;
  #unhandled: Stream[] = [];

  constructor(
    role: "client" | "server",
    readonly maxIncomingStreams: number,
    readonly create: (id: number) => Stream,
    /** The application's handler threw for this stream (the stream is its problem, not the connection's). */
    readonly onHandlerError: (s: Stream, e: unknown) => void,
    /** The limit on peer-initiated streams went up: MAX_STREAMS is owed. */
    readonly onMaxStreamsRaised: () => void,
  ) {
    this.#localBit = role === "client" ? 0 : 1;
    if (maxIncomingStreams > INITIAL_MAX_STREAMS) {
      this.advertisedMaxStreams = maxIncomingStreams;
      onMaxStreamsRaised();
    }
  }

  isLocal(id: number): boolean {
    return (id & 1) === this.#localBit;
  }

  /** Opens a local stream now, or undefined when the peer's limit is reached. */
  tryOpen(): Stream | undefined {
    if (this.#localOpened >= this.#peerMaxStreams) return undefined;
    const id = this.#localOpened++ * 4 + this.#localBit;
    const s = this.create(id);
    this.streams.set(id, s);
    return s;
  }

  /** Opens a local stream, waiting for MAX_STREAMS credit when needed. */
  open(): Promise<Stream> {
    const s = this.tryOpen();
    if (s !== undefined) return Promise.resolve(s);
    return new Promise((resolve, reject) => this.#openWaiters.push({ resolve, reject }));
  }

  /** The peer raised our limit. */
  onMaxStreams(max: number): void {
    if (max <= this.#peerMaxStreams) return;
    this.#peerMaxStreams = max;
    while (this.#openWaiters.length > 0) {
      const s = this.tryOpen();
      if (s === undefined) break;
      this.#openWaiters.shift()!.resolve(s);
    }
  }

  /** The stream a frame refers to: opens peer streams up to id, undefined for a finished one. */
  get(id: number, frameType: number): Stream | undefined {
    if ((id & 2) !== 0) {
      throw new TransportError(
        TransportErrorCode.STREAM_STATE_ERROR,
        `unidirectional stream ${id}`,
        frameType,
      );
    }
    const existing = this.streams.get(id);
    if (existing !== undefined) return existing;
    const index = Math.floor(id / 4);
    if (this.isLocal(id)) {
      if (index >= this.#localOpened) {
        throw new TransportError(
          TransportErrorCode.STREAM_STATE_ERROR,
          `stream ${id} was never opened`,
          frameType,
        );
      }
      return undefined;
    }
    if (index < this.#peerOpened) return undefined;
    if (index >= this.advertisedMaxStreams) {
      throw new TransportError(
        TransportErrorCode.STREAM_LIMIT_ERROR,
        `stream ${id} exceeds the limit of ${this.advertisedMaxStreams} streams`,
        frameType,
      );
    }
    let s: Stream | undefined;
    while (this.#peerOpened <= index) {
      const sid = this.#peerOpened++ * 4 + (1 - this.#localBit);
      s = this.create(sid);
      this.streams.set(sid, s);
      this.#deliver(s);
    }
    return s;
  }

  /** Sets the handler of peer-opened streams and hands it those that waited for it. */
  onIncoming(handler: (s: Stream) => void): void {
    this.#handler = handler;
    const waited = this.#unhandled;
    this.#unhandled = [];
    for (const s of waited) this.#deliver(s);
  }

  #deliver(s: Stream): void {
    if (this.#handler === undefined) {
      this.#unhandled.push(s);
      return;
    }
    try {
      this.#handler(s);
    } catch (e) {
      this.onHandlerError(s, e);
    }
  }

  /** A stream finished both ways; a peer stream returns its credit (RFC 9000 §4.6). */
  onTerminated(s: Stream): void {
    if (!this.streams.delete(s.id) || this.isLocal(s.id)) return;
    this.#peerClosed++;
    const limit = this.#peerClosed + this.maxIncomingStreams;
    if (limit - this.advertisedMaxStreams >= this.maxIncomingStreams / 2) {
      this.advertisedMaxStreams = limit;
      this.onMaxStreamsRaised();
    }
  }

  /** Rejects every waiting openStream(). */
  rejectWaiters(error: unknown): void {
    for (const w of this.#openWaiters.splice(0)) w.reject(error);
  }
}
