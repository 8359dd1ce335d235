/**
 * The lean HTTP/1.1 path of sendLocal for http: origins: the request head serialized here into one Uint8Array
 * (local_h1_wire.ts), written on a pooled Deno connection (local_h1_conn.ts), and the answer parsed
 * by llhttp — node's HTTPParser as Deno ships it (`_http_common`) — instead of node:http's
 * ClientRequest/IncomingMessage/Agent/net.Socket machinery. Same rules as local_h1.ts: header lines
 * as given, the browser's Content-Length kept, chunked (with trailers) otherwise, 1xx skipped, 101
 * hands over the connection; an abort closes the connection and is never re-sent; a request without
 * a body that finds a reused connection closed before any answer byte is sent once more on a new one.
 */
import { createRequire } from "node:module";
import type { ByteSink, HeaderLine } from "../protocol/body.ts";
import { localFailure, refuseLater, unsendable } from "./local_failure.ts";
import type {
  LocalExchange,
  LocalHttpOptions,
  LocalRequest,
  LocalResponseHandler,
} from "./local_http_types.ts";
import { type ConnOwner, type LocalConn, poolFor } from "./local_h1_conn.ts";
import { CHUNK_END, chunkHeader, encodeRequestHead, lastChunk } from "./local_h1_wire.ts";
import { rawConnDuplex } from "./local_h1_raw.ts";
import { headerPairs, plainBytes, pumpBody } from "./local_node_body.ts";

/** The parts of Deno's node HTTPParser (llhttp) used here. */
interface Parser {
  initialize(type: number, resource: object | null, maxHeaderSize: number, lenient: number): void;
  execute(data: Uint8Array): number | Error;
  finish(): number | Error | undefined;
  [key: number]: unknown;
}
interface ParserClass {
  new (): Parser;
  RESPONSE: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
}
const { HTTPParser } = createRequire(import.meta.url)("_http_common") as { HTTPParser: ParserClass };

/** A response head up to this size passes (as through node:http: 200 Set-Cookie lines of 1 KiB). */
const MAX_RESPONSE_HEAD = 512 * 1024;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Sends one HTTP/1.1 request on the lean path; see sendLocal. */
export function sendH1Lean(
  origin: URL,
  req: LocalRequest,
  handler: LocalResponseHandler,
  opts: LocalHttpOptions,
  headerArray: string[],
): LocalExchange {
  let head: Uint8Array;
  try {
    head = encodeRequestHead(req.method, req.target, headerArray);
  } catch (e) {
    return refuseLater(unsendable(origin, e as Error), handler, req.body);
  }
  const x = new H1Exchange(origin, req, handler, opts, head);
  x.start(false);
  return { abort: (reason) => x.fail(reason ?? new Error("local request aborted"), true) };
}

/** One request and its answer on one connection. */
class H1Exchange implements ConnOwner {
  #conn: LocalConn | null = null;
  #parser: Parser | null = null;
  #answered = false;
  #done = false;
  #sink: ByteSink | null = null;
  #bodyOpen: boolean;
  #gotBytes = false;
  #retried = false;
  /** Header lines llhttp flushed before the head completed (very long heads), then the trailers. */
  #early: string[] = [];
  #headDone = false;
  #skipping = false;
  #complete = false;
  /** A second answer began on the connection: nothing was asked for it. */
  #extra = false;
  #keepAlive = false;
  #upgrade: { statusText: string; headers: HeaderLine[] } | null = null;

  constructor(
    readonly origin: URL,
    readonly req: LocalRequest,
    readonly handler: LocalResponseHandler,
    readonly opts: LocalHttpOptions,
    readonly head: Uint8Array,
  ) {
    this.#bodyOpen = req.body !== null;
  }

  start(fresh: boolean): void {
    const pool = poolFor(this.origin);
    const timeout = this.opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const use = (c: LocalConn) => this.#attach(c);
    const fail = (e: Error) => this.fail(e);
    if (fresh) pool.fresh(timeout, use, fail);
    else pool.acquire(timeout, use, fail);
  }

  #attach(conn: LocalConn): void {
    if (this.#done) return conn.release();
    this.#conn = conn;
    conn.owner = this;
    this.#parser = parserFor(conn, this);
    conn.write(this.head);
    if (this.req.body) this.#pumpBody(conn);
  }

  #pumpBody(conn: LocalConn): void {
    const chunked = this.req.contentLength === undefined;
    pumpBody(this.req.body!, {
      write(chunk: Uint8Array): boolean {
        if (!chunked) return conn.write(chunk);
        // An empty chunk would end a chunked body.
        if (chunk.byteLength === 0) return true;
        conn.write(chunkHeader(chunk.byteLength));
        conn.write(chunk);
        return conn.write(CHUNK_END);
      },
      once(_event: "drain", listener: () => void) {
        conn.onDrain = listener;
      },
    }, {
      end: (trailers) => {
        this.#bodyOpen = false;
        if (this.#done || !chunked) return;
        let last: Uint8Array;
        try {
          last = lastChunk(trailers);
        } catch (e) {
          return this.fail(unsendable(this.origin, e as Error));
        }
        conn.write(last);
      },
      error: (e) => {
        this.#bodyOpen = false;
        this.fail(new Error(`the request body failed: ${e.message}`, { cause: e }));
      },
    });
  }

  // ConnOwner: bytes, EOF, failures of the connection.

  data(chunk: Uint8Array): void {
    if (this.#done) return;
    this.#gotBytes = true;
    let ret: number | Error;
    try {
      ret = this.#parser!.execute(chunk);
    } catch (e) {
      ret = e as Error;
    }
    if (this.#done) return;
    // Bytes past a complete answer (parsed or not) leave the connection unusable, the answer whole.
    if (this.#complete) return this.#finish(!this.#extra && ret === chunk.byteLength);
    if (ret instanceof Error) return this.fail(ret);
    if (this.#upgrade) return this.#handOver(chunk.slice(ret as number));
  }

  end(): void {
    if (this.#done) return;
    if (this.#mayRetry()) return;
    let ret: number | Error | undefined;
    try {
      ret = this.#parser!.finish();
    } catch (e) {
      ret = e as Error;
    }
    if (this.#done) return;
    if (this.#complete) return this.#finish(false);
    const what = this.#answered ? "before the body was complete" : "before answering";
    this.fail(ret instanceof Error ? ret : new Error(`${this.origin.host} closed the connection ${what}`));
  }

  error(e: Error): void {
    if (this.#done || this.#mayRetry()) return;
    this.fail(e);
  }

  closed(): void {
    this.fail(new Error(`the connection to ${this.origin.host} was closed`));
  }

  /** A reused connection the service had closed: a bodiless request goes once more on a new one. */
  #mayRetry(): boolean {
    const conn = this.#conn!;
    if (this.#gotBytes || this.#retried || conn.served === 0 || this.req.body !== null) return false;
    this.#retried = true;
    conn.owner = null;
    conn.close();
    this.#conn = null;
    this.start(true);
    return true;
  }

  // Parser callbacks.

  onHeaders(lines: string[]): void {
    for (const l of lines) this.#early.push(l);
  }

  onHeadersComplete(
    status: number,
    statusText: string,
    raw: string[] | undefined,
    upgrade: boolean,
    keepAlive: boolean,
  ): number {
    if (this.#done) return 0;
    if (this.#complete) {
      this.#extra = true;
      return 0;
    }
    const flat = this.#early.length > 0 ? this.#early.concat(raw ?? []) : raw ?? [];
    this.#early = [];
    if (status >= 100 && status < 200 && status !== 101) {
      this.#skipping = true;
      return 0;
    }
    if (status === 101 || upgrade) {
      if (!this.req.upgrade || status !== 101) {
        this.fail(new Error(`${this.origin.host} answered ${status} with an upgrade that was not asked for`));
        return 0;
      }
      this.#upgrade = { statusText, headers: headerPairs(flat) };
      return 0;
    }
    this.#answered = true;
    this.#headDone = true;
    this.#keepAlive = keepAlive;
    const sink = this.#sink = this.handler.head(status, statusText, headerPairs(flat));
    const conn = this.#conn!;
    sink.onDrain(() => {
      if (this.#conn === conn && !this.#done) conn.resume();
    });
    return this.req.method === "HEAD" ? 1 : 0;
  }

  onBody(chunk: Uint8Array): void {
    if (this.#done || this.#complete) return;
    if (!this.#sink!.write(plainBytes(chunk))) this.#conn!.pause();
  }

  onMessageComplete(): void {
    if (this.#skipping) {
      this.#skipping = false;
      return;
    }
    if (this.#headDone && !this.#complete) this.#complete = true;
  }

  /** The answer is complete: the sink ends, the connection goes back to the pool if it can. */
  #finish(clean: boolean): void {
    this.#done = true;
    const conn = this.#conn!;
    // An idle pooled connection must not keep its last exchange (and through it the tunnel stream and
    // every object of the request) until its next use: idle connections are reused last-in first-out.
    (conn as LocalConn & { exchange?: H1Exchange }).exchange = undefined;
    const trailers = this.#early.length > 0 ? headerPairs(this.#early) : null;
    this.#sink!.end(trailers);
    if (this.#bodyOpen) {
      // The answer is complete while the upload goes on (413…): the rest of the body is not wanted.
      this.#bodyOpen = false;
      this.req.body!.cancel();
      return conn.close();
    }
    if (clean && this.#keepAlive) conn.release();
    else conn.close();
  }

  #handOver(rest: Uint8Array): void {
    this.#done = true;
    const conn = this.#conn!;
    conn.owner = null;
    conn.detach();
    const { statusText, headers } = this.#upgrade!;
    this.handler.upgraded(statusText, headers, rawConnDuplex(conn, rest));
  }

  /** Ends the exchange with a failure: the handler hears it once (an error before the head, an aborted sink after). */
  fail(e: Error, silent = false): void {
    if (this.#done) return;
    this.#done = true;
    const conn = this.#conn;
    if (conn) {
      conn.owner = null;
      conn.close();
    }
    if (this.#bodyOpen) {
      this.#bodyOpen = false;
      this.req.body!.cancel(e);
    }
    if (this.#sink) this.#sink.abort(e);
    else if (!silent && !this.#answered) this.handler.error(localFailure(this.origin, e));
  }
}

/** The connection's parser, made and initialized once; its callbacks go to the current exchange `x`. */
function parserFor(conn: LocalConn, x: H1Exchange): Parser {
  const holder = conn as LocalConn & { parser?: Parser; exchange?: H1Exchange };
  holder.exchange = x;
  let p = holder.parser;
  if (!p) {
    p = holder.parser = new HTTPParser();
    p[HTTPParser.kOnHeaders] = (lines: string[]) => holder.exchange!.onHeaders(lines);
    p[HTTPParser.kOnHeadersComplete] = (
      _maj: number,
      _min: number,
      raw: string[] | undefined,
      _method: unknown,
      _url: unknown,
      status: number,
      statusText: string,
      upgrade: boolean,
      keepAlive: boolean,
    ) => holder.exchange!.onHeadersComplete(status, statusText ?? "", raw, upgrade, keepAlive);
    p[HTTPParser.kOnBody] = (b: Uint8Array) => holder.exchange!.onBody(b);
    p[HTTPParser.kOnMessageComplete] = () => holder.exchange!.onMessageComplete();
    // Once per connection: after a complete answer llhttp waits for the next one. No resource, so
    // Deno runs execute without an AsyncResource scope (measured: a fifth of the parser's cost).
    p.initialize(HTTPParser.RESPONSE, null, MAX_RESPONSE_HEAD, 0);
  }
  return p;
}
