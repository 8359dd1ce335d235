/**
 * One HTTP/1.1 connection: parses request heads, feeds request bodies, answers in order
 * (a pipelined head is parsed only after the previous response ended and its body was read),
 * keep-alive and HTTP/1.0, 100-continue, upgrades only after a 101, and the head/idle timeouts.
 */
import {
  type ByteConsumer,
  type HeaderLine,
  latin1Bytes,
  latin1String,
  type RawDuplex,
} from "../../protocol/body.ts";
import type { FrontHandler, FrontRequest } from "../front_types.ts";
import type { Carrier } from "../carrier.ts";
import type { FrontLimits } from "../front_limits.ts";
import type { Clock, TimerId } from "../../log/clock.ts";
import type { Logger } from "../../log/logger.ts";
import { HttpError, STATUS_TEXT } from "./errors.ts";
import { locateHead, parseRequestHead, type RequestHead } from "./request_head.ts";
import { RequestBody } from "./request_body.ts";
import { Http1Response } from "./response.ts";

export interface Http1Options {
  handler: FrontHandler;
  proto: "http" | "https";
  limits: FrontLimits;
  clock: Clock;
  logger?: Logger;
}

/** Bytes buffered beyond the current request before reading pauses. */
const MAX_BUFFERED = 64 * 1024;
/** Request body bytes dropped after the response before giving up on keep-alive. */
const MAX_DISCARD = 1024 * 1024;
const CONTINUE = latin1Bytes("HTTP/1.1 100 Continue\r\n\r\n");

interface Exchange {
  head: RequestHead;
  body: RequestBody | null;
  response: Http1Response;
  responseDone: boolean;
  close: boolean;
  /** The client sent `Expect: 100-continue` and waits for a 100 or the final answer. */
  expect: boolean;
  continueSent: boolean;
  finalHead: boolean;
  aborts: (() => void)[];
}

/** Serves HTTP/1.1 on a carrier until it closes. Returns a handle for graceful shutdown. */
export function serveHttp1(carrier: Carrier, options: Http1Options): { closeIdle(): void } {
  const c = new Http1Connection(carrier, options);
  carrier.listen({ data: (b) => c.onData(b), end: () => c.onEnd(), close: () => c.onClose() });
  return { closeIdle: () => c.closeIdle() };
}

class Http1Connection {
  #buf: Uint8Array | null = null;
  #scanned = 0;
  #state: "head" | "request" | "upgraded" | "closed" = "head";
  #ex: Exchange | null = null;
  #timer: TimerId | null = null;
  #paused = false;
  #closing = false;
  #raw: ((chunk: Uint8Array | null) => void) | null = null;

  constructor(private readonly carrier: Carrier, private readonly o: Http1Options) {
    this.#arm(o.limits.idleTimeoutMs, "idle");
  }

  onData(chunk: Uint8Array): void {
    if (this.#state === "closed") return;
    if (this.#state === "upgraded") return this.#raw ? this.#raw(chunk) : this.#append(chunk);
    this.#append(chunk);
    this.#pump();
  }

  onEnd(): void {
    if (this.#state === "upgraded") return this.#raw?.(null);
    const ex = this.#ex;
    // A browser that sends FIN while its request is pending has gone away (as nginx reads it):
    // the gateway must hear of it rather than keep an origin request open for nobody.
    if (ex && !ex.responseDone) return this.carrier.destroy();
    if (ex) ex.close = true;
    else this.carrier.end();
  }

  onClose(): void {
    const wasUpgraded = this.#state === "upgraded";
    this.#state = "closed";
    this.#stopTimer();
    if (wasUpgraded) return this.#raw?.(null);
    const ex = this.#ex;
    this.#ex = null;
    if (!ex) return;
    ex.body?.fail(new Error("connection closed"));
    if (!ex.responseDone) { for (const cb of ex.aborts.splice(0)) cb(); }
  }

  closeIdle(): void {
    this.#closing = true;
    if (this.#state === "head" && !this.#buf) this.carrier.end();
  }

  #append(chunk: Uint8Array): void {
    if (!this.#buf) this.#buf = chunk;
    else {
      const b = new Uint8Array(this.#buf.byteLength + chunk.byteLength);
      b.set(this.#buf);
      b.set(chunk, this.#buf.byteLength);
      this.#buf = b;
    }
  }

  #take(n: number): void {
    const b = this.#buf!;
    this.#buf = n >= b.byteLength ? null : b.subarray(n);
  }

  #pump(): void {
    while (this.#state === "head" || this.#state === "request") {
      if (this.#state === "head") {
        if (!this.#readHead()) break;
        continue;
      }
      const ex = this.#ex!;
      if (ex.body && this.#buf && ex.body.flowing) {
        try {
          this.#take(ex.body.feed(this.#buf));
        } catch (e) {
          return this.#badBody(ex, e as Error);
        }
        if (ex.body.discarding && ex.body.discarded > MAX_DISCARD) ex.close = true;
      }
      if (!ex.responseDone || (ex.body && !ex.body.done && !ex.close)) break;
      if (!this.#next(ex)) return;
    }
    this.#flow();
  }

  /** Reads one head from the buffer into an exchange; false when more bytes are needed. */
  #readHead(): boolean {
    let b = this.#buf;
    // RFC 9112 §2.2: empty lines before a request line are ignored.
    while (b && b.byteLength >= 2 && b[0] === 13 && b[1] === 10) {
      this.#take(2);
      b = this.#buf;
    }
    if (!b) return false;
    let end: number;
    let head: RequestHead;
    try {
      end = locateHead(b, 0, b.byteLength, this.#scanned, this.o.limits);
      if (end === -1) {
        // A head in pieces: the head timeout runs from its first byte (trickled heads are cut).
        if (this.#timerKind !== "head") this.#arm(this.o.limits.headTimeoutMs, "head");
        this.#scanned = b.byteLength;
        return false;
      }
      head = parseRequestHead(latin1String(b.subarray(0, end)), this.o.limits);
    } catch (e) {
      this.#reject(e as Error);
      return false;
    }
    this.#scanned = 0;
    this.#take(end);
    this.#disarm();
    this.#begin(head);
    return true;
  }

  #begin(head: RequestHead): void {
    this.#state = "request";
    const body = head.framing.kind === "none" ? null : new RequestBody(head.framing, this.o.limits, {
      wantData: () => this.#wantData(),
      flowChanged: () => this.#flow(),
    });
    const ex: Exchange = {
      head,
      body,
      response: null as unknown as Http1Response,
      responseDone: false,
      close: !head.keepAlive || this.#closing,
      expect: head.expectContinue,
      continueSent: false,
      finalHead: false,
      aborts: [],
    };
    ex.response = new Http1Response({
      carrier: this.carrier,
      method: head.method,
      version: head.version,
      upgrade: head.upgrade,
      closeWanted: () => ex.close || this.#closing || (ex.expect && !ex.continueSent && !!body && !body.done),
      headWritten: () => (ex.finalHead = true),
      responseDone: (close) => this.#responseDone(ex, close),
      switched: () => this.#switch(ex),
    });
    this.#ex = ex;
    const request: FrontRequest = {
      method: head.method,
      target: head.target,
      headers: head.headers,
      authority: head.host,
      httpVersion: head.version,
      remoteAddr: this.carrier.remoteAddr,
      remotePort: this.carrier.remotePort,
      proto: this.o.proto,
      body,
      contentLength: head.contentLength,
      upgrade: head.upgrade,
      onAbort: (cb) => ex.aborts.push(cb),
    };
    const failed = (e: unknown) => {
      this.o.logger?.error({ err: String(e) }, "front handler failed");
      if (this.#ex !== ex) return;
      if (!ex.response.headSent) this.#answer(500, "");
      else this.carrier.destroy();
    };
    try {
      // An async handler's rejection must not become an unhandled rejection (Deno exits on those).
      const r = this.o.handler(request, ex.response) as unknown;
      if (r instanceof Promise) r.catch(failed);
    } catch (e) {
      failed(e);
    }
  }

  #wantData(): void {
    const ex = this.#ex;
    if (ex && ex.expect && !ex.continueSent && !ex.finalHead) {
      ex.continueSent = true;
      this.carrier.write(CONTINUE);
    }
    if (this.#state === "request") this.#pump();
  }

  #responseDone(ex: Exchange, close: boolean): void {
    ex.responseDone = true;
    if (close) ex.close = true;
    if (ex !== this.#ex) return;
    const body = ex.body;
    if (body && !body.done) {
      // The request body was not (fully) read: drop it to reach the next request, unless the
      // client was still waiting for 100 Continue (it may never send it) or it is too large.
      if (ex.expect && !ex.continueSent) ex.close = true;
      else if (!body.started || !body.paused) body.cancel();
    }
    queueMicrotask(() => this.#state === "request" && this.#pump());
  }

  /** Finishes an exchange; false when the connection closes. */
  #next(ex: Exchange): boolean {
    this.#ex = null;
    if (ex.close || this.#closing) {
      this.#state = "closed";
      this.carrier.end();
      return false;
    }
    this.#state = "head";
    if (!this.#buf) this.#arm(this.o.limits.idleTimeoutMs, "idle");
    return true;
  }

  #switch(ex: Exchange): RawDuplex {
    this.#state = "upgraded";
    this.#stopTimer();
    this.#ex = null;
    ex.responseDone = true;
    const carrier = this.carrier;
    let consumer: ByteConsumer | null = null;
    let pending: Uint8Array | null = this.#buf;
    this.#buf = null;
    let finished = false;
    let endedEarly = false;
    const finish = (c: ByteConsumer) => {
      finished = true;
      if (carrier.closed) c.error(new Error("connection closed"));
      else c.end(null);
    };
    this.#raw = (chunk) => {
      if (finished) return;
      if (!consumer) {
        if (chunk) pending = pending ? concat(pending, chunk) : chunk;
        else endedEarly = true;
        return;
      }
      if (chunk) consumer.data(chunk);
      else finish(consumer);
    };
    return {
      source: {
        start(c) {
          consumer = c;
          if (pending) c.data(pending);
          pending = null;
          if (endedEarly) finish(c);
          else carrier.resume();
        },
        pause: () => carrier.pause(),
        resume: () => carrier.resume(),
        cancel: () => carrier.destroy(),
      },
      sink: {
        write: (chunk) => carrier.write(chunk),
        onDrain: (cb) => carrier.onDrain(cb),
        end: (_t?: HeaderLine[] | null) => carrier.end(),
        abort: () => carrier.destroy(),
      },
    };
  }

  /** Reads while the current request can take bytes or the buffer is small; else pauses. */
  #flow(): void {
    if (this.#state === "upgraded") return; // the raw source pauses and resumes the carrier
    const ex = this.#ex;
    const want = this.#state === "head" ||
      (this.#state === "request" && (!ex?.body || !ex.body.paused || ex.body.done) &&
        (this.#buf?.byteLength ?? 0) < MAX_BUFFERED);
    if (want === !this.#paused) return;
    this.#paused = !want;
    if (want) this.carrier.resume();
    else this.carrier.pause();
  }

  #badBody(ex: Exchange, e: Error): void {
    this.o.logger?.debug({ err: e.message, remote: this.carrier.remoteAddr }, "bad request body");
    ex.body?.fail(e);
    if (!ex.response.headSent && e instanceof HttpError) this.#answer(e.status, e.message);
    else this.carrier.destroy();
  }

  #reject(e: Error): void {
    const status = e instanceof HttpError ? e.status : 400;
    this.o.logger?.debug({ err: e.message, status, remote: this.carrier.remoteAddr }, "bad request head");
    this.#answer(status, e.message);
  }

  /** Answers an error of the front's own and closes. */
  #answer(status: number, _why: string): void {
    this.#state = "closed";
    this.#disarm();
    this.carrier.write(latin1Bytes(
      `HTTP/1.1 ${status} ${
        STATUS_TEXT[status] ?? "Error"
      }\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
    ));
    this.carrier.end();
  }

  #timerKind: "idle" | "head" | null = null;
  #deadline = 0;
  #firesAt = 0;

  /**
   * Sets the one deadline this connection has. The timer is re-armed lazily (when it fires early it
   * sleeps again for the rest): a keep-alive request costs no timer creation or clearing.
   */
  #arm(ms: number, kind: "idle" | "head"): void {
    this.#timerKind = kind;
    const deadline = this.o.clock.now() + ms;
    this.#deadline = deadline;
    if (this.#timer !== null && deadline >= this.#firesAt) return;
    if (this.#timer !== null) this.o.clock.clearTimeout(this.#timer);
    this.#schedule(ms);
  }

  #schedule(ms: number): void {
    this.#firesAt = this.o.clock.now() + ms;
    this.#timer = this.o.clock.setTimeout(() => {
      this.#timer = null;
      const kind = this.#timerKind;
      if (kind === null || this.#state === "closed" || this.#state === "upgraded") return;
      const left = this.#deadline - this.o.clock.now();
      if (left > 0) return this.#schedule(left);
      this.#timerKind = null;
      if (kind === "head") this.#answer(408, "request head timeout");
      else {
        this.#state = "closed";
        this.carrier.destroy();
      }
    }, ms);
  }

  #disarm(): void {
    this.#timerKind = null;
  }

  /** Drops the pending timer for good (the connection is gone). */
  #stopTimer(): void {
    this.#timerKind = null;
    if (this.#timer !== null) this.o.clock.clearTimeout(this.#timer);
    this.#timer = null;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const o = new Uint8Array(a.byteLength + b.byteLength);
  o.set(a);
  o.set(b, a.byteLength);
  return o;
}
