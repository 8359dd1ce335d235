/** An HTTP/1.1 request body as a ByteSource: Content-Length or chunked bytes fed by the connection. */
import type { ByteConsumer, ByteSource, HeaderLine } from "../../protocol/body.ts";
import { ChunkedDecoder, type ChunkedLimits } from "./chunked.ts";
import type { BodyFraming } from "./request_head.ts";

export interface BodyHooks {
  /** The consumer started or resumed: send 100 Continue if owed, feed what is buffered. */
  wantData(): void;
  /** Flow changed (paused, cancelled): the connection re-evaluates reading. */
  flowChanged(): void;
}

/** A request body that the connection feeds; nothing is consumed until the gateway starts it. */
export class RequestBody implements ByteSource {
  consumer: ByteConsumer | null = null;
  started = false;
  paused = false;
  /** Cancelled by the consumer or abandoned after the response: bytes are read and dropped. */
  discarding = false;
  done = false;
  discarded = 0;
  #remaining = 0;
  #decoder: ChunkedDecoder | null = null;

  constructor(framing: BodyFraming, limits: ChunkedLimits, private readonly hooks: BodyHooks) {
    if (framing.kind === "length") this.#remaining = framing.length;
    else {
      this.#decoder = new ChunkedDecoder(limits, (c) => this.#deliver(c), (t) => this.#finish(t));
    }
  }

  start(consumer: ByteConsumer): void {
    if (this.started) throw new Error("request body already started: a body has one consumer");
    this.started = true;
    this.consumer = consumer;
    this.hooks.wantData();
  }

  pause(): void {
    this.paused = true;
    this.hooks.flowChanged();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.hooks.wantData();
  }

  cancel(): void {
    if (this.done) return;
    this.discarding = true;
    this.consumer = null;
    this.paused = false;
    this.hooks.wantData();
  }

  /** True when bytes would be taken now. */
  get flowing(): boolean {
    return !this.done && (this.discarding || (this.started && !this.paused));
  }

  /** Consumes body bytes from buf; returns how many (0 while not flowing). Throws HttpError. */
  feed(buf: Uint8Array): number {
    if (!this.flowing) return 0;
    if (this.#decoder) return this.#decoder.feed(buf, 0, buf.byteLength);
    const n = Math.min(this.#remaining, buf.byteLength);
    this.#remaining -= n;
    this.#deliver(n === buf.byteLength ? buf : buf.subarray(0, n));
    if (this.#remaining === 0) this.#finish(null);
    return n;
  }

  /** The body broke (connection lost, framing error): the consumer sees an error. */
  fail(error: Error): void {
    if (this.done) return;
    this.done = true;
    const c = this.consumer;
    this.consumer = null;
    if (c && !this.discarding) c.error(error);
  }

  #deliver(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    if (this.discarding || !this.consumer) this.discarded += chunk.byteLength;
    else this.consumer.data(chunk);
  }

  #finish(trailers: HeaderLine[] | null): void {
    this.done = true;
    const c = this.consumer;
    this.consumer = null;
    if (c && !this.discarding) c.end(trailers);
  }
}
