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
  readonly requestHeaders: HeaderLine[];
  readonly requestBody: CapturedBody;
  status: number | null;
  statusText: string;
  readonly responseHeaders: HeaderLine[];
  readonly responseBody: CapturedBody;
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

/**
 * What the store keeps of each exchange is laid out for the garbage collector: one object per exchange,
 * its header lines and small bodies as ranges of shared 64 KiB slabs (a slab lives while any exchange
 * that points into it is kept). At 12 000 requests/s the 500 kept exchanges are younger than a scavenge
 * interval, so V8 copies or promotes every byte of them: kept as arrays of header lines, body objects and
 * views (1.45 kB of heap each), they quadrupled the client's scavenge pauses; as one object (0.5 kB), little.
 */
const SLAB_BYTES = 64 * 1024;
const SLAB_COPY_MAX = 4 * 1024;
let slab = new Uint8Array(SLAB_BYTES);
let slabUsed = 0;

/** Reserves n bytes (n ≤ SLAB_COPY_MAX) in the current slab; returns their offset in `slab`. */
function reserve(n: number): number {
  if (slabUsed + n > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    slabUsed = 0;
  }
  const at = slabUsed;
  slabUsed += n;
  return at;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bytes in a buffer: a slab range, or a buffer of their own (large ones). */
class Span {
  constructor(readonly buf: Uint8Array, readonly at: number, readonly len: number) {}
  get bytes(): Uint8Array {
    return this.buf.subarray(this.at, this.at + this.len);
  }
}

const NO_SPAN = new Span(new Uint8Array(0), 0, 0);

/** A copy of `bytes`: the forwarder hands its chunks on, and their new owner may reuse the buffer. */
function copySpan(bytes: Uint8Array): Span {
  const n = bytes.byteLength;
  if (n > SLAB_COPY_MAX) return new Span(bytes.slice(), 0, n);
  const at = reserve(n);
  slab.set(bytes, at);
  return new Span(slab, at, n);
}

/**
 * Header lines as "name:value" lines joined by LF, UTF-8 encoded (neither a name nor a value holds LF,
 * and a name holds no colon; byte strings come back as they were).
 */
function packLines(lines: HeaderLine[]): Span {
  if (lines.length === 0) return NO_SPAN;
  let text = "";
  for (let i = 0; i < lines.length; i++) text += (i ? "\n" : "") + lines[i][0] + ":" + lines[i][1];
  // Byte strings (one code unit per byte) take at most two bytes a unit in UTF-8.
  const most = text.length * 2;
  if (most > SLAB_COPY_MAX) {
    const own = encoder.encode(text);
    return new Span(own, 0, own.byteLength);
  }
  const at = reserve(most);
  const { written } = encoder.encodeInto(text, slab.subarray(at, at + most));
  slabUsed = at + written;
  return new Span(slab, at, written);
}

function unpackLines(span: Span): HeaderLine[] {
  if (span.len === 0) return [];
  return decoder.decode(span.bytes).split("\n").map((line) => {
    const colon = line.indexOf(":");
    return [line.slice(0, colon), line.slice(colon + 1)];
  });
}

/** One direction's body: a single copied chunk (most bodies), or several. */
type BodySpans = Span | Span[] | null;

function capturedBody(spans: BodySpans, kept: number, total: number): CapturedBody {
  const list = spans === null ? [] : spans instanceof Span ? [spans] : spans;
  return { chunks: list.map((s) => s.bytes), kept, total };
}

/** An exchange as kept, with what the store accounts for it. */
class StoredExchange implements Exchange {
  status: number | null = null;
  statusText = "";
  durationMs: number | null = null;
  error?: string;
  done = false;
  /** Bytes charged against the store's budget. */
  charged = 0;
  dropped = false;
  #requestHeaders: Span;
  #responseHeaders = NO_SPAN;
  #requestBody: BodySpans = null;
  #requestKept = 0;
  #requestTotal = 0;
  #responseBody: BodySpans = null;
  #responseKept = 0;
  #responseTotal = 0;

  constructor(
    readonly id: number,
    readonly requestId: string,
    readonly startedAt: number,
    readonly method: string,
    readonly target: string,
    readonly localUrl: string,
    requestHeaders: HeaderLine[],
    readonly replayOf: number | undefined,
  ) {
    this.#requestHeaders = packLines(requestHeaders);
  }

  get requestHeaders(): HeaderLine[] {
    return unpackLines(this.#requestHeaders);
  }

  get responseHeaders(): HeaderLine[] {
    return unpackLines(this.#responseHeaders);
  }

  get requestBody(): CapturedBody {
    return capturedBody(this.#requestBody, this.#requestKept, this.#requestTotal);
  }

  get responseBody(): CapturedBody {
    return capturedBody(this.#responseBody, this.#responseKept, this.#responseTotal);
  }

  /** Bytes the request line and header lines take. */
  get headBytes(): number {
    return this.#requestHeaders.len + this.target.length;
  }

  /** Sets the response head; returns the bytes its lines take. */
  setResponse(status: number, statusText: string, headers: HeaderLine[]): number {
    this.status = status;
    this.statusText = statusText;
    this.#responseHeaders = packLines(headers);
    return this.#responseHeaders.len;
  }

  /** Counts a body chunk and keeps up to `limit` bytes of the body; returns the bytes kept now. */
  appendBody(response: boolean, chunk: Uint8Array, limit: number): number {
    const n = chunk.byteLength;
    const kept = response ? this.#responseKept : this.#requestKept;
    if (response) this.#responseTotal += n;
    else this.#requestTotal += n;
    const room = limit - kept;
    if (room <= 0 || this.dropped || n === 0) return 0;
    const span = copySpan(room < n ? chunk.subarray(0, room) : chunk);
    const had = response ? this.#responseBody : this.#requestBody;
    const spans = had === null ? span : had instanceof Span ? [had, span] : (had.push(span), had);
    if (response) {
      this.#responseBody = spans;
      this.#responseKept += span.len;
    } else {
      this.#requestBody = spans;
      this.#requestKept += span.len;
    }
    return span.len;
  }
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
  const exchanges: StoredExchange[] = [];
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
  const find = (id: number): StoredExchange | undefined => {
    let lo = 0;
    let hi = exchanges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const at = exchanges[mid].id;
      if (at === id) return exchanges[mid];
      if (at < id) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  };
  const charge = (x: StoredExchange, bytes: number) => {
    if (x.dropped || bytes === 0) return;
    x.charged += bytes;
    heldBytes += bytes;
    evict(x);
  };
  /** Drops the oldest until both limits hold; the exchange being written is dropped last. */
  function evict(keep: StoredExchange) {
    while (exchanges.length > 0 && (exchanges.length > maxExchanges || heldBytes > byteBudget)) {
      const victim = exchanges[0] === keep && exchanges.length > 1
        ? exchanges.splice(1, 1)[0]
        : exchanges.shift()!;
      victim.dropped = true;
      heldBytes -= victim.charged;
      if (listeners.size > 0) emit({ type: "dropped", id: victim.id });
      if (victim === keep) break;
    }
  }

  function start(info: BeginInfo, replayOf?: number): { id: number; capture: ExchangeCapture } {
    const started = performance.now();
    const x = new StoredExchange(
      nextId++,
      info.requestId,
      now(),
      info.method,
      info.target,
      info.localUrl,
      info.headers,
      replayOf,
    );
    exchanges.push(x);
    charge(x, x.headBytes + 200);
    if (listeners.size > 0) emit({ type: "update", exchange: x });
    const capture: ExchangeCapture = {
      requestBody: (chunk) => charge(x, x.appendBody(false, chunk, bodyLimit)),
      response(status, statusText, headers) {
        charge(x, x.setResponse(status, statusText, headers));
        if (listeners.size > 0) emit({ type: "update", exchange: x });
      },
      responseBody: (chunk) => charge(x, x.appendBody(true, chunk, bodyLimit)),
      end(endInfo) {
        if (x.done) return;
        x.done = true;
        x.durationMs = performance.now() - started;
        if (endInfo.error) x.error = endInfo.error;
        if (!x.dropped && listeners.size > 0) emit({ type: "update", exchange: x });
      },
    };
    return { id: x.id, capture };
  }

  return {
    begin: (info) => start(info).capture,
    beginReplay: (info, replayOf) => start(info, replayOf),
    list: () => exchanges.slice().reverse(),
    get: (id) => find(id),
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
