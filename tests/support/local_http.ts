/** Helpers for the local HTTP client's tests: callback bodies, a promise around sendLocal, a raw TCP origin. */
import net from "node:net";
import type { ByteConsumer, ByteSink, ByteSource, HeaderLine, RawDuplex } from "../../lib/protocol/body.ts";
import {
  type LocalExchange,
  type LocalHttpOptions,
  type LocalRequest,
  type LocalRequestError,
  sendLocal,
} from "../../lib/proxy/local_http.ts";

export interface Collected {
  status: number;
  statusText: string;
  headers: HeaderLine[];
  body: Uint8Array;
  trailers: HeaderLine[] | null;
}

/** Concatenates chunks. */
export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/** A sink that keeps every chunk; `done` resolves on end, rejects on abort. */
export function collectingSink(): {
  sink: ByteSink;
  chunks: Uint8Array[];
  done: Promise<HeaderLine[] | null>;
} {
  const chunks: Uint8Array[] = [];
  let resolve!: (t: HeaderLine[] | null) => void;
  let reject!: (e: Error) => void;
  const done = new Promise<HeaderLine[] | null>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const sink: ByteSink = {
    write(chunk) {
      chunks.push(chunk);
      return true;
    },
    onDrain() {},
    end: (trailers) => resolve(trailers ?? null),
    abort: (reason) => reject(reason ?? new Error("aborted")),
  };
  return { sink, chunks, done };
}

/** A source that delivers the given chunks (then trailers) as fast as it is not paused. */
export function chunkSource(chunks: Uint8Array[], trailers: HeaderLine[] | null = null): ByteSource {
  let consumer: ByteConsumer | null = null;
  let paused = false;
  let i = 0;
  let cancelled = false;
  const pump = () => {
    while (consumer && !paused && !cancelled && i < chunks.length) consumer.data(chunks[i++]);
    if (consumer && !paused && !cancelled && i === chunks.length) {
      i++;
      consumer.end(trailers);
    }
  };
  return {
    start(c) {
      consumer = c;
      pump();
    },
    pause: () => void (paused = true),
    resume() {
      paused = false;
      queueMicrotask(pump);
    },
    cancel: () => void (cancelled = true),
  };
}

/** Runs sendLocal and collects the whole answer; rejects with the LocalRequestError or the sink's abort. */
export function request(
  origin: URL,
  req: Partial<LocalRequest> & { target: string },
  opts?: LocalHttpOptions,
): Promise<Collected> & { exchange: LocalExchange } {
  let exchange!: LocalExchange;
  const p = new Promise<Collected>((resolve, reject) => {
    exchange = sendLocal(origin, { method: "GET", headers: [], body: null, protocol: "h1", ...req }, {
      head(status, statusText, headers) {
        const { sink, chunks, done } = collectingSink();
        done.then(
          (trailers) => resolve({ status, statusText, headers, body: concat(chunks), trailers }),
          reject,
        );
        return sink;
      },
      upgraded: () => reject(new Error("unexpected upgrade")),
      error: (e: LocalRequestError) => reject(e),
    }, opts);
  });
  return Object.assign(p, { exchange });
}

/** Runs an upgrade request; resolves with the 101's head and raw connection, or the ordinary answer. */
export function upgradeRequest(
  origin: URL,
  req: Partial<LocalRequest> & { target: string },
): Promise<{ upgraded: { headers: HeaderLine[]; raw: RawDuplex } } | { answer: Collected }> {
  return new Promise((resolve, reject) => {
    sendLocal(origin, { method: "GET", headers: [], body: null, protocol: "h1", upgrade: true, ...req }, {
      head(status, statusText, headers) {
        const { sink, chunks, done } = collectingSink();
        done.then(
          (trailers) => resolve({ answer: { status, statusText, headers, body: concat(chunks), trailers } }),
          reject,
        );
        return sink;
      },
      upgraded: (_text, headers, raw) => resolve({ upgraded: { headers, raw } }),
      error: reject,
    });
  });
}

export const latin1 = (b: Uint8Array): string => String.fromCharCode(...b);
const enc = new TextEncoder();
export const bytes = (s: string): Uint8Array => enc.encode(s);

/**
 * A TCP origin that records each request's exact bytes and answers with `answer(requestBytes)`.
 * A request ends at its head when it has no body, after Content-Length bytes, or after the last chunk
 * and its trailers. Keeps connections open (keep-alive) unless the answer says `close`.
 */
export async function rawOrigin(
  answer: (request: string, socket: net.Socket) => string | null,
): Promise<{ url: URL; requests: string[]; connections: number; close(): Promise<void> }> {
  const state = { requests: [] as string[], connections: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let buf = "";
    socket.on("data", (d: Uint8Array) => {
      buf += latin1(d);
      for (;;) {
        const n = requestLength(buf);
        if (n < 0) return;
        const req = buf.slice(0, n);
        buf = buf.slice(n);
        state.requests.push(req);
        const out = answer(req, socket);
        if (out !== null) socket.write(Uint8Array.from(out, (c) => c.charCodeAt(0)));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: new URL(`http://127.0.0.1:${port}`),
    get requests() {
      return state.requests;
    },
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Length of the first complete request in `buf` (a byte string), or -1 if it is not complete yet. */
function requestLength(buf: string): number {
  const headEnd = buf.indexOf("\r\n\r\n");
  if (headEnd < 0) return -1;
  const head = buf.slice(0, headEnd).toLowerCase();
  const start = headEnd + 4;
  const length = /\r\ncontent-length: *(\d+)/.exec(head);
  if (length) return buf.length >= start + Number(length[1]) ? start + Number(length[1]) : -1;
  if (!/\r\ntransfer-encoding: *chunked/.test(head)) return start;
  let off = start;
  for (;;) {
    const lineEnd = buf.indexOf("\r\n", off);
    if (lineEnd < 0) return -1;
    const size = parseInt(buf.slice(off, lineEnd), 16);
    if (size === 0) {
      const end = buf.indexOf("\r\n\r\n", lineEnd);
      return end < 0 ? -1 : end + 4;
    }
    off = lineEnd + 2 + size + 2;
    if (off > buf.length) return -1;
  }
}

/** A source that makes `total` bytes of a pattern in `chunkSize` chunks, only while not paused. */
export function generatedSource(
  total: number,
  chunkSize: number,
): ByteSource & { produced(): number; cancelled(): boolean } {
  let consumer: ByteConsumer | null = null;
  let paused = false;
  let produced = 0;
  let cancelled = false;
  let scheduled = false;
  const pump = () => {
    scheduled = false;
    // A bounded batch per turn, so a source that is never paused still yields to the event loop.
    for (let n = 0; n < 16 && consumer && !paused && !cancelled && produced < total; n++) {
      const size = Math.min(chunkSize, total - produced);
      const chunk = new Uint8Array(size).fill(produced / chunkSize & 0xff);
      produced += size;
      consumer.data(chunk);
    }
    if (!consumer || paused || cancelled) return;
    if (produced >= total) {
      consumer.end(null);
      consumer = null;
    } else schedule();
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setTimeout(pump, 0);
  };
  return {
    start(c) {
      consumer = c;
      schedule();
    },
    pause: () => void (paused = true),
    resume() {
      paused = false;
      schedule();
    },
    cancel: () => void (cancelled = true),
    produced: () => produced,
    cancelled: () => cancelled,
  };
}

/**
 * A slow receiver: full at `high` bytes queued, which it consumes `high` bytes per millisecond.
 * `maxQueued` tells how far past full it was written (a sender ignoring backpressure fills it).
 */
export function throttledSink(high = 256 * 1024): {
  sink: ByteSink;
  received: () => number;
  maxQueued: () => number;
  done: Promise<void>;
} {
  let received = 0;
  let queued = 0;
  let maxQueued = 0;
  let drain = () => {};
  let full = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const consume = () => {
    timer = undefined;
    queued = Math.max(0, queued - high);
    if (queued > 0) timer = setTimeout(consume, 1);
    else if (full) {
      full = false;
      drain();
    }
  };
  const sink: ByteSink = {
    write(c) {
      received += c.byteLength;
      queued += c.byteLength;
      maxQueued = Math.max(maxQueued, queued);
      timer ??= setTimeout(consume, 1);
      full = queued >= high;
      return !full;
    },
    onDrain: (cb) => void (drain = cb),
    end() {
      clearTimeout(timer);
      resolve();
    },
    abort(e) {
      clearTimeout(timer);
      reject(e ?? new Error("aborted"));
    },
  };
  return { sink, received: () => received, maxQueued: () => maxQueued, done };
}
