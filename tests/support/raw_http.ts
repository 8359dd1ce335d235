/**
 * A raw HTTP/1.1 exchange for byte-level tests: write exact request bytes on a connection, read the
 * answer as bytes and split it into status line, header lines (as sent: case, order, duplicates),
 * body (de-chunked) and trailers.
 */
import { latin1String } from "../../lib/protocol/body.ts";

export interface RawResponse {
  status: number;
  statusLine: string;
  headers: [string, string][];
  body: Uint8Array;
  trailers: [string, string][];
  chunked: boolean;
}

/** Plain TCP to 127.0.0.1:port. */
export function connectPlain(port: number): Promise<Deno.Conn> {
  return Deno.connect({ hostname: "127.0.0.1", port });
}

/** TLS to 127.0.0.1:port with SNI `host`, trusting `caPem`, offering only HTTP/1.1. */
export async function connectTls(port: number, host: string, caPem: string): Promise<Deno.Conn> {
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  return await Deno.startTls(tcp, { hostname: host, caCerts: [caPem], alpnProtocols: ["http/1.1"] });
}

class Bytes {
  #buf = new Uint8Array(0);
  constructor(private conn: Deno.Conn) {}

  async #more(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    const n = await this.conn.read(chunk);
    if (n === null) return false;
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
    return true;
  }

  /** Bytes up to and including `delim`. */
  async until(delim: string): Promise<Uint8Array> {
    const d = new TextEncoder().encode(delim);
    for (;;) {
      const at = indexOf(this.#buf, d);
      if (at !== -1) return this.take(at + d.length);
      if (!await this.#more()) throw new Error(`connection closed before ${JSON.stringify(delim)}`);
    }
  }

  async exactly(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n) {
      if (!await this.#more()) throw new Error(`connection closed ${n - this.#buf.length} bytes short`);
    }
    return this.take(n);
  }

  async rest(): Promise<Uint8Array> {
    while (await this.#more()) { /* read to the end */ }
    return this.take(this.#buf.length);
  }

  take(n: number): Uint8Array {
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function lines(head: Uint8Array): string[] {
  return latin1String(head).split("\r\n").filter((l) => l !== "");
}

function splitLine(l: string): [string, string] {
  const i = l.indexOf(":");
  return [l.slice(0, i), l.slice(i + 1).trim()];
}

/** Reads one response from `reader` (after a request whose method was `method`). */
async function readResponse(b: Bytes, method: string): Promise<RawResponse> {
  const [statusLine, ...rest] = lines(await b.until("\r\n\r\n"));
  const status = Number(statusLine.split(" ")[1]);
  const headers = rest.map(splitLine);
  const get = (n: string) => headers.find(([k]) => k.toLowerCase() === n)?.[1];
  const chunked = /chunked/i.test(get("transfer-encoding") ?? "");
  const trailers: [string, string][] = [];
  let body: Uint8Array;
  if (method === "HEAD" || status === 204 || status === 304 || (status >= 100 && status < 200)) {
    body = new Uint8Array();
  } else if (chunked) {
    const parts: Uint8Array[] = [];
    for (;;) {
      const size = parseInt(latin1String(await b.until("\r\n")), 16);
      if (size === 0) break;
      parts.push(await b.exactly(size));
      await b.exactly(2);
    }
    for (;;) {
      const l = latin1String(await b.until("\r\n")).replace(/\r\n$/, "");
      if (l === "") break;
      trailers.push(splitLine(l));
    }
    body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      body.set(p, at);
      at += p.length;
    }
  } else if (get("content-length") !== undefined) {
    body = await b.exactly(Number(get("content-length")));
  } else body = await b.rest();
  return { status, statusLine, headers, body, trailers, chunked };
}

/** Writes `request` on `conn`, reads `count` responses (pipelining), and closes the connection. */
export async function rawExchange(
  conn: Deno.Conn,
  request: Uint8Array | string,
  method = "GET",
  count = 1,
): Promise<RawResponse[]> {
  const bytes = typeof request === "string" ? Uint8Array.from(request, (c) => c.charCodeAt(0)) : request;
  try {
    let off = 0;
    while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    const b = new Bytes(conn);
    const out: RawResponse[] = [];
    for (let i = 0; i < count; i++) out.push(await readResponse(b, method));
    return out;
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}
