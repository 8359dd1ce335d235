/**
 * The capture hook the client's forwarder calls for every exchange, and the store behind the
 * inspector: the last exchanges (500 by default) within a byte budget, the oldest dropped first,
 * the first 64 KB of each body kept. Capturing only copies bytes; it never changes what is forwarded.
 */
import type { HeaderLine } from "../protocol/body.ts";

/** What the forwarder hands the inspector when a request head arrives. */
export interface BeginInfo {
  requestId: string;
  method: string;
  /** The request target as received: a byte string (one code unit per byte). */
  target: string;
  headers: HeaderLine[];
  /** The local service this request goes to, e.g. http://127.0.0.1:3000/. */
  localUrl: string;
}

/** The forwarder's side of one exchange; every call is cheap and never throws. */
export interface ExchangeCapture {
  requestBody(chunk: Uint8Array): void;
  response(status: number, statusText: string, headers: HeaderLine[]): void;
  responseBody(chunk: Uint8Array): void;
  /** The exchange is over (with the error that ended it, if any). */
  end(info: { error?: string }): void;
}

/** The hook the forwarder calls. */
export interface Inspector {
  begin(info: BeginInfo): ExchangeCapture;
}

/** A captured body: its first bytes and how many there were in all. */
export interface CapturedBody {
  chunks: Uint8Array[];
  kept: number;
  total: number;
}

/** One exchange as the store keeps it. */
export interface Exchange {
  /** Store-wide sequence number, the id the API uses. */
  id: number;
  requestId: string;
  /** Epoch milliseconds. */
  startedAt: number;
  method: string;
  target: string;
  localUrl: string;
  requestHeaders: HeaderLine[];
  requestBody: CapturedBody;
  status: number | null;
  statusText: string;
  responseHeaders: HeaderLine[];
  responseBody: CapturedBody;
  durationMs: number | null;
  error?: string;
  /** Set on an exchange the inspector made itself by replaying another. */
  replayOf?: number;
  done: boolean;
}

export type ExchangeEvent = { type: "update"; exchange: Exchange } | { type: "dropped"; id: number };

export interface CaptureStoreOptions {
  /** At most this many exchanges (default 500). */
  maxExchanges?: number;
  /** Bytes kept in all (bodies and headers; default 32 MiB). */
  byteBudget?: number;
  /** Bytes kept of each body (default 64 KiB). */
  bodyLimit?: number;
  /** Epoch milliseconds (injected in tests). */
  now?: () => number;
}

export interface CaptureStore extends Inspector {
  /** Like begin, for the replays the inspector makes itself; with the new exchange's id. */
  beginReplay(info: BeginInfo, replayOf: number): { id: number; capture: ExchangeCapture };
  /** Newest first. */
  list(): Exchange[];
  get(id: number): Exchange | undefined;
  /** Bytes held now, as counted against the budget. */
  bytesHeld(): number;
  /** Called on every change; returns the unsubscribe function. */
  subscribe(listener: (e: ExchangeEvent) => void): () => void;
}

function headerBytes(headers: HeaderLine[]): number {
  let n = 0;
  for (const [k, v] of headers) n += k.length + v.length + 4;
  return n;
}

/** Small copies share 64 KiB slabs: one buffer per slab, not one per body (an ArrayBuffer each was most of
 * what capturing a small response cost). A slab lives while any exchange copied into it is kept. */
const SLAB_BYTES = 64 * 1024;
const SLAB_COPY_MAX = 4 * 1024;
let slab = new Uint8Array(SLAB_BYTES);
let slabUsed = 0;

function copyOf(bytes: Uint8Array): Uint8Array {
  const n = bytes.byteLength;
  if (n > SLAB_COPY_MAX) return bytes.slice();
  if (slabUsed + n > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    slabUsed = 0;
  }
  const copy = slab.subarray(slabUsed, slabUsed + n);
  copy.set(bytes);
  slabUsed += n;
  return copy;
}

/** An exchange as the store accounts for it. */
interface Held {
  x: Exchange;
  /** Bytes charged against the budget. */
  bytes: number;
  dropped: boolean;
}

/**
 * Creates the store. The exchanges sit in one array in id order, found by binary search: no Map keyed by
 * id, whose rehashed tables would keep dropped exchanges alive through scavenges (see
 * lib/transport/stream_table.ts).
 */
export function createCaptureStore(options: CaptureStoreOptions = {}): CaptureStore {
  const maxExchanges = options.maxExchanges ?? 500;
  const byteBudget = options.byteBudget ?? 32 * 1024 * 1024;
  const bodyLimit = options.bodyLimit ?? 64 * 1024;
  const now = options.now ?? Date.now;
  /** Oldest first; ids ascend. */
  const exchanges: Held[] = [];
  const listeners = new Set<(e: ExchangeEvent) => void>();
  let heldBytes = 0;
  let nextId = 1;

  /** Events are made only for someone listening (the inspector page open): most exchanges have nobody. */
  const emit = (e: ExchangeEvent) => {
    for (const l of listeners) {
      try {
        l(e);
      } catch { /* a broken listener must not break capturing */ }
    }
  };
  const find = (id: number): Held | undefined => {
    let lo = 0;
    let hi = exchanges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const at = exchanges[mid].x.id;
      if (at === id) return exchanges[mid];
      if (at < id) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  };
  const charge = (h: Held, bytes: number) => {
    if (h.dropped) return;
    h.bytes += bytes;
    heldBytes += bytes;
    evict(h);
  };
  /** Drops the oldest until both limits hold; the exchange being written is dropped last. */
  function evict(keep: Held) {
    while (exchanges.length > 0 && (exchanges.length > maxExchanges || heldBytes > byteBudget)) {
      const victim = exchanges[0] === keep && exchanges.length > 1
        ? exchanges.splice(1, 1)[0]
        : exchanges.shift()!;
      victim.dropped = true;
      heldBytes -= victim.bytes;
      if (listeners.size > 0) emit({ type: "dropped", id: victim.x.id });
      if (victim === keep) break;
    }
  }
  const append = (h: Held, body: CapturedBody, chunk: Uint8Array) => {
    body.total += chunk.byteLength;
    const room = bodyLimit - body.kept;
    if (room <= 0 || h.dropped) return;
    // A copy: the forwarder hands the chunk on and its new owner may reuse the buffer.
    const part = copyOf(chunk.subarray(0, Math.min(room, chunk.byteLength)));
    body.chunks.push(part);
    body.kept += part.byteLength;
    charge(h, part.byteLength);
  };

  function start(info: BeginInfo, replayOf?: number): { id: number; capture: ExchangeCapture } {
    const started = performance.now();
    const x: Exchange = {
      id: nextId++,
      requestId: info.requestId,
      startedAt: now(),
      method: info.method,
      target: info.target,
      localUrl: info.localUrl,
      requestHeaders: [...info.headers],
      requestBody: { chunks: [], kept: 0, total: 0 },
      status: null,
      statusText: "",
      responseHeaders: [],
      responseBody: { chunks: [], kept: 0, total: 0 },
      durationMs: null,
      replayOf,
      done: false,
    };
    const h: Held = { x, bytes: 0, dropped: false };
    exchanges.push(h);
    charge(h, headerBytes(x.requestHeaders) + x.target.length + 200);
    if (listeners.size > 0) emit({ type: "update", exchange: x });
    const capture: ExchangeCapture = {
      requestBody: (chunk) => append(h, x.requestBody, chunk),
      response(status, statusText, headers) {
        x.status = status;
        x.statusText = statusText;
        x.responseHeaders = [...headers];
        charge(h, headerBytes(x.responseHeaders));
        if (listeners.size > 0) emit({ type: "update", exchange: x });
      },
      responseBody: (chunk) => append(h, x.responseBody, chunk),
      end(endInfo) {
        if (x.done) return;
        x.done = true;
        x.durationMs = performance.now() - started;
        if (endInfo.error) x.error = endInfo.error;
        if (!h.dropped && listeners.size > 0) emit({ type: "update", exchange: x });
      },
    };
    return { id: x.id, capture };
  }

  return {
    begin: (info) => start(info).capture,
    beginReplay: (info, replayOf) => start(info, replayOf),
    list: () => exchanges.map((h) => h.x).reverse(),
    get: (id) => find(id)?.x,
    bytesHeld: () => heldBytes,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** The kept bytes of a body as one array. */
export function bodyBytes(body: CapturedBody): Uint8Array {
  const out = new Uint8Array(body.kept);
  let at = 0;
  for (const c of body.chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
