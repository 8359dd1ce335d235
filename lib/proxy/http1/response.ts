/**
 * The HTTP/1.1 response writer a FrontHandler gets: the head as given plus the front's framing
 * (Content-Length kept when the origin sent one and declared no trailers, else chunked on 1.1 and
 * close-delimited on 1.0), HEAD/204/304 without body bytes, and the 101 handoff.
 */
import { type ByteSink, type HeaderLine, latin1Bytes, type RawDuplex } from "../../protocol/body.ts";
import type { FrontResponse } from "../front_types.ts";
import type { Carrier } from "../carrier.ts";
import { chunkHeader, lastChunk } from "./chunked.ts";
import { responseHead } from "./response_head.ts";

export interface ResponseHost {
  readonly carrier: Carrier;
  readonly method: string;
  readonly version: "1.0" | "1.1";
  readonly upgrade: boolean;
  /** The connection must close after this response (client asked, server closing, body unread). */
  closeWanted(): boolean;
  /** The head went out: no 100 Continue may follow. */
  headWritten(): void;
  /** The response ended; close tells the connection to close after it. */
  responseDone(close: boolean): void;
  /** The 101 went out: hand over the raw connection. */
  switched(): RawDuplex;
}

const CRLF = latin1Bytes("\r\n");
type Mode = "none" | "length" | "chunked" | "close";

/** Builds the response writer for one request. */
export class Http1Response implements FrontResponse {
  headSent = false;
  ended = false;
  #mode: Mode = "none";
  #declared = 0;
  #written = 0;
  #close = false;
  readonly body: ByteSink;

  constructor(private readonly host: ResponseHost) {
    this.body = {
      write: (chunk) => this.#write(chunk),
      onDrain: (cb) => host.carrier.onDrain(cb),
      end: (trailers) => this.#end(trailers ?? null),
      abort: () => this.#abort(),
    };
  }

  head(status: number, statusText: string, headers: HeaderLine[]): void {
    if (this.headSent) throw new Error("response head already sent");
    if (status === 101) throw new Error("use switchProtocols for 101");
    if (status < 100 || status > 999) throw new Error(`invalid status ${status}`);
    const h = this.host;
    if (status < 200) {
      // An interim response (103 Early Hints): lines as given, the final head follows.
      if (h.version === "1.1") h.carrier.write(responseHead(status, statusText, headers, []));
      return;
    }
    this.headSent = true;
    h.headWritten();
    let contentLength: number | undefined;
    let trailerDeclared = false;
    let originClose = false;
    const lines: HeaderLine[] = [];
    for (const line of headers) {
      const n = line[0].toLowerCase();
      if (n === "transfer-encoding") continue;
      if (n === "content-length") {
        if (
          !/^\d{1,15}$/.test(line[1]) || (contentLength !== undefined && contentLength !== Number(line[1]))
        ) {
          contentLength = -1;
          continue;
        }
        if (contentLength !== undefined) continue;
        contentLength = Number(line[1]);
      } else if (n === "trailer") trailerDeclared = true;
      else if (n === "connection" && /(^|,)\s*close\s*(,|$)/i.test(line[1])) originClose = true;
      lines.push(line);
    }
    if (contentLength === -1) contentLength = undefined;
    this.#close = originClose || h.closeWanted();
    const framing: string[] = [];
    const bodyless = h.method === "HEAD" || status === 204 || status === 304;
    let out = lines;
    if (bodyless) this.#mode = "none";
    else if (contentLength !== undefined && (!trailerDeclared || h.version === "1.0")) {
      this.#mode = "length";
      this.#declared = contentLength;
    } else if (h.version === "1.1") {
      this.#mode = "chunked";
      if (contentLength !== undefined) out = lines.filter((l) => l[0].toLowerCase() !== "content-length");
      framing.push("Transfer-Encoding: chunked");
    } else {
      this.#mode = "close";
      this.#close = true;
    }
    if (this.#close) framing.push("Connection: close");
    else if (h.version === "1.0") framing.push("Connection: keep-alive");
    h.carrier.write(responseHead(status, statusText, out, framing));
    if (this.#mode === "length" && this.#declared === 0) this.#finish();
  }

  switchProtocols(statusText: string, headers: HeaderLine[]): RawDuplex {
    if (this.headSent) throw new Error("response head already sent");
    if (!this.host.upgrade) throw new Error("switchProtocols on a request that asked for no upgrade");
    this.headSent = true;
    this.ended = true;
    this.host.headWritten();
    this.host.carrier.write(responseHead(101, statusText, headers, []));
    return this.host.switched();
  }

  #write(chunk: Uint8Array): boolean {
    if (!this.headSent) throw new Error("response body before head");
    const c = this.host.carrier;
    const n = chunk.byteLength;
    if (this.ended || n === 0 || this.#mode === "none") return true;
    switch (this.#mode) {
      case "length": {
        const room = this.#declared - this.#written;
        this.#written += Math.min(n, room);
        // More bytes than declared would frame a second response: cut them, close after.
        if (n > room) this.#close = true;
        const ok = c.write(n > room ? chunk.subarray(0, room) : chunk);
        if (this.#written === this.#declared) this.#finish();
        return ok;
      }
      case "chunked":
        c.write(latin1Bytes(chunkHeader(n)));
        c.write(chunk);
        return c.write(CRLF);
      default:
        return c.write(chunk);
    }
  }

  #end(trailers: HeaderLine[] | null): void {
    if (!this.headSent) throw new Error("response end before head");
    if (this.ended) return;
    if (this.#mode === "length" && this.#written < this.#declared) {
      // A short body cannot be framed: the browser must see a broken response, not a wrong one.
      return this.#abort();
    }
    if (this.#mode === "chunked") this.host.carrier.write(latin1Bytes(lastChunk(trailers)));
    this.#finish();
  }

  #finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.host.responseDone(this.#close || this.#mode === "close");
  }

  #abort(): void {
    if (this.ended) return;
    this.ended = true;
    this.host.carrier.destroy();
  }
}
