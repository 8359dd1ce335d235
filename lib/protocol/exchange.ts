/**
 * One request stream as heads and bodies, the same adapter on both sides and for HTTP and upgrades
 * alike: a reader that hands over the first message (the head) and then the body as a ByteSource
 * (DATA payloads passed through as views, no copy; TRAILERS at the end), and a writer that sends a head
 * and then is the body's ByteSink. After a 101 both switch to raw bytes.
 */
import type { TransportStream } from "../transport/types.ts";
import type { ByteConsumer, ByteSink, ByteSource, HeaderLine } from "./body.ts";
import { decodePayload, encode, maxPayloadOf, typeNameOf, writeFrameHeader } from "./codec.ts";
import { ProtocolError } from "./errors.ts";
import { FRAME_HEADER_BYTES, type Message, MessageType, ResetCode } from "./messages.ts";

const EMPTY = new Uint8Array(0);
const DATA = MessageType.DATA;
const TRAILERS = MessageType.TRAILERS;

/** What the reader reports before the body: the head, or why none came. */
export interface HeadHandler {
  head(message: Message): void;
  /** The stream broke or ended before a head (reset, connection lost, FIN, malformed bytes). */
  fail(error: unknown): void;
}

/**
 * Reads a request stream: the head, then the body (DATA… TRAILERS? FIN) as a ByteSource, or raw bytes
 * after `raw()`. A malformed message resets the stream with PROTOCOL_ERROR.
 */
export class TunnelStreamReader implements ByteSource {
  #stream: TransportStream;
  #handler: HeadHandler | undefined;
  #consumer: ByteConsumer | undefined;
  /** Bytes received but not yet parsed (a paused body or a partial frame). */
  #pending: Uint8Array = EMPTY;
  /** Bytes of a DATA payload still to pass through. */
  #dataLeft = 0;
  #raw = false;
  #paused = false;
  #ended = false;
  #failed: unknown;
  #done = false;
  #trailers: HeaderLine[] | null = null;
  #processing = false;

  constructor(stream: TransportStream, handler: HeadHandler) {
    this.#stream = stream;
    this.#handler = handler;
    stream.read({
      data: (chunk) => this.#onChunk(chunk),
      end: () => {
        this.#ended = true;
        this.#process();
      },
      error: (e) => this.#fail(e),
    });
  }

  /** From now on every byte is body (raw): the stream carries an upgraded connection. */
  raw(): ByteSource {
    this.#raw = true;
    return this;
  }

  start(consumer: ByteConsumer): void {
    if (this.#consumer !== undefined) throw new Error("TunnelStreamReader: the body has a consumer already");
    this.#consumer = consumer;
    if (this.#failed !== undefined) {
      this.#finish(() => consumer.error(asError(this.#failed)));
      return;
    }
    this.#process();
  }

  pause(): void {
    this.#paused = true;
    this.#stream.pauseReading();
  }

  resume(): void {
    this.#paused = false;
    this.#process();
  }

  cancel(_reason?: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#pending = EMPTY;
    this.#stream.stopReading(ResetCode.CANCELLED);
  }

  #onChunk(chunk: Uint8Array): void {
    if (this.#done) return;
    this.#pending = this.#pending.length === 0 ? chunk : concat(this.#pending, chunk);
    this.#process();
  }

  /** True while the body has nowhere to go: before a consumer, or paused by it. */
  get #blocked(): boolean {
    return this.#handler === undefined && (this.#consumer === undefined || this.#paused);
  }

  #process(): void {
    if (this.#processing || this.#done) return;
    this.#processing = true;
    try {
      while (this.#pending.length > 0 && !this.#done) {
        if (this.#blocked) break;
        if (!this.#step()) break;
      }
    } catch (e) {
      this.#processing = false;
      this.#protocolFailure(e);
      return;
    }
    this.#processing = false;
    if (this.#done) return;
    if (this.#blocked) {
      this.#stream.pauseReading();
      return;
    }
    if (this.#ended) {
      if (this.#pending.length > 0 || this.#dataLeft > 0 || this.#handler !== undefined) {
        const where = this.#handler !== undefined ? "before a head" : "inside a message";
        this.#protocolFailure(new ProtocolError("stream_ended", `stream ended ${where}`));
        return;
      }
      const consumer = this.#consumer!;
      const trailers = this.#trailers;
      this.#finish(() => consumer.end(trailers));
      return;
    }
    this.#stream.resumeReading();
  }

  /** Parses or passes on what it can of #pending; false when it needs more bytes. */
  #step(): boolean {
    const p = this.#pending;
    if (this.#raw && this.#handler === undefined) {
      this.#pending = EMPTY;
      this.#consumer!.data(p);
      return true;
    }
    if (this.#dataLeft > 0) {
      const n = Math.min(this.#dataLeft, p.length);
      this.#dataLeft -= n;
      this.#pending = n === p.length ? EMPTY : p.subarray(n);
      this.#consumer!.data(n === p.length ? p : p.subarray(0, n));
      return true;
    }
    if (p.length < FRAME_HEADER_BYTES) return false;
    const type = p[0];
    const length = ((p[1] << 24) >>> 0) + (p[2] << 16) + (p[3] << 8) + p[4];
    const name = typeNameOf(type);
    if (length > maxPayloadOf(name)) {
      throw new ProtocolError(
        "too_large",
        `${name} payload of ${length} bytes exceeds ${maxPayloadOf(name)}`,
      );
    }
    if (type === DATA && this.#handler === undefined && this.#trailers === null) {
      this.#dataLeft = length;
      this.#pending = p.subarray(FRAME_HEADER_BYTES);
      return true;
    }
    if (p.length < FRAME_HEADER_BYTES + length) return false;
    const message = decodePayload(name, p.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length));
    this.#pending = p.length === FRAME_HEADER_BYTES + length
      ? EMPTY
      : p.subarray(FRAME_HEADER_BYTES + length);
    const handler = this.#handler;
    if (handler !== undefined) {
      this.#handler = undefined;
      handler.head(message);
      return true;
    }
    if (type === TRAILERS && this.#trailers === null) {
      this.#trailers = (message as { trailers: HeaderLine[] }).trailers;
      return true;
    }
    throw new ProtocolError("unexpected_type", `${name} where DATA, TRAILERS or the end was expected`);
  }

  #protocolFailure(e: unknown): void {
    this.#fail(e);
    this.#stream.reset(ResetCode.PROTOCOL_ERROR);
  }

  #fail(e: unknown): void {
    if (this.#done) return;
    this.#failed = e;
    const handler = this.#handler;
    if (handler !== undefined) {
      this.#handler = undefined;
      this.#done = true;
      handler.fail(e);
      return;
    }
    const consumer = this.#consumer;
    if (consumer !== undefined) this.#finish(() => consumer.error(asError(e)));
  }

  #finish(report: () => void): void {
    this.#done = true;
    this.#pending = EMPTY;
    report();
  }
}

/**
 * Writes a request stream: `head()` once, then the body through the ByteSink face (each chunk one
 * DATA message: a 5-byte header and the chunk by reference, no copy), `end()` with trailers then FIN.
 */
export class TunnelStreamWriter implements ByteSink {
  #stream: TransportStream;
  #raw = false;
  #ended = false;

  constructor(stream: TransportStream) {
    this.#stream = stream;
  }

  /** Sends a head (or ERROR); with `fin`, the stream's sending half ends with it. */
  head(message: Message, fin = false): void {
    this.headBytes(encode(message), fin);
  }

  /** Sends a head already encoded (by a caller that encoded it to validate it first). */
  headBytes(frame: Uint8Array, fin = false): void {
    this.#stream.write(frame);
    if (fin) this.end();
  }

  /** From now on chunks go as raw bytes (an upgraded connection). */
  raw(): ByteSink {
    this.#raw = true;
    return this;
  }

  write(chunk: Uint8Array): boolean {
    if (this.#ended) return false;
    if (this.#raw) return this.#stream.write(chunk);
    if (chunk.length === 0) return true;
    let ok = true;
    for (let at = 0; at < chunk.length; at += MAX_DATA_CHUNK) {
      const part = at === 0 && chunk.length <= MAX_DATA_CHUNK
        ? chunk
        : chunk.subarray(at, at + MAX_DATA_CHUNK);
      const header = new Uint8Array(FRAME_HEADER_BYTES);
      writeFrameHeader(header, DATA, part.length);
      this.#stream.write(header);
      ok = this.#stream.write(part);
    }
    return ok;
  }

  onDrain(callback: () => void): void {
    this.#stream.onDrain(callback);
  }

  end(trailers?: HeaderLine[] | null): void {
    if (this.#ended) return;
    this.#ended = true;
    if (!this.#raw && trailers && trailers.length > 0) {
      this.#stream.write(encode({ type: "TRAILERS", trailers }));
    }
    this.#stream.finish();
  }

  abort(_reason?: Error): void {
    this.#ended = true;
    this.#stream.reset(ResetCode.INTERNAL);
  }
}

/** Largest DATA message the writer makes (a chunk larger than this is split). */
const MAX_DATA_CHUNK = 1024 * 1024;

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
