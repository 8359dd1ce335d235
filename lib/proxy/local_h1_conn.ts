/**
 * Kept-alive HTTP/1.1 connections to http: local services on Deno.connect, pooled per origin. (Not
 * https: Deno.connectTls refuses a self-signed certificate that is also a CA, CaUsedAsEndEntity, which
 * node:https under Deno accepts with the `ca` option: https: origins stay on node:http.) A connection reads all the time, into one reused buffer, and hands each
 * chunk to its owner (the exchange using it; the chunk is only valid during the call); an idle one
 * that receives anything or is closed by the service leaves the pool. Writes are queued in order and
 * report backpressure above a high-water mark.
 */
import { LocalRequestError } from "./local_http_types.ts";

const READ_SIZE = 64 * 1024;
const WRITE_HIGH_WATER = 64 * 1024;
/** Writes queued together go out as one copy up to this size (a chunk header, its bytes and CRLF). */
const GATHER_LIMIT = 16 * 1024;
// As node's keep-alive Agent was configured: lifo reuse of the warmest connection.
const MAX_CONNECTIONS = 256;
const MAX_IDLE = 64;

/** Who receives a connection's bytes. */
export interface ConnOwner {
  /** Bytes read; `chunk` is reused after the call returns. */
  data(chunk: Uint8Array): void;
  /** The service closed its side (EOF). */
  end(): void;
  /** Reading or writing failed; the connection is closed. */
  error(e: Error): void;
  /** The connection was closed by us (abort, closeLocalConnections). */
  closed(): void;
}

/** One connection to a local service. */
export class LocalConn {
  owner: ConnOwner | null = null;
  /** Requests started on it before the current one (a reused connection may be stale). */
  served = 0;
  isClosed = false;
  readEnded = false;
  /** Set by the current writer; called each time the queue drains after `write` returned false. */
  onDrain: (() => void) | null = null;
  #buf = new Uint8Array(READ_SIZE);
  #paused = false;
  #wake: (() => void) | null = null;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #flushing = false;
  #drainWanted = false;
  #endWrite = false;

  constructor(readonly conn: Deno.Conn, readonly pool: LocalPool | null) {
    void this.#readLoop();
  }

  async #readLoop(): Promise<void> {
    try {
      while (!this.isClosed) {
        if (this.#paused) await new Promise<void>((r) => this.#wake = r);
        if (this.isClosed) return;
        const n = await this.conn.read(this.#buf);
        if (this.isClosed) return;
        const owner = this.owner;
        if (n === null) {
          this.readEnded = true;
          if (owner) owner.end();
          else this.close();
          return;
        }
        // Bytes on an idle connection: nobody can frame them, the connection is unusable.
        if (!owner) return this.close();
        owner.data(this.#buf.subarray(0, n));
      }
    } catch (e) {
      this.#broken(e as Error);
    }
  }

  #broken(e: Error): void {
    if (this.isClosed) return;
    const owner = this.owner;
    this.owner = null;
    this.#shut();
    owner?.error(e);
  }

  /** Stops reading after the current chunk (backpressure). */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** Queues bytes; false when the queue is above its high-water mark (wait for `onDrain`). */
  write(chunk: Uint8Array): boolean {
    if (this.isClosed) return false;
    this.#queue.push(chunk);
    this.#queued += chunk.byteLength;
    if (!this.#flushing) void this.#flush();
    if (this.#queued < WRITE_HIGH_WATER) return true;
    this.#drainWanted = true;
    return false;
  }

  /** Half-closes once the queue is written (an upgraded connection's end). */
  endWrite(): void {
    this.#endWrite = true;
    if (!this.#flushing) void this.#flush();
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#queue.length > 0) {
        const data = this.#take();
        let off = 0;
        while (off < data.byteLength) off += await this.conn.write(off === 0 ? data : data.subarray(off));
        this.#queued -= data.byteLength;
        if (this.isClosed) return;
      }
      if (this.#endWrite && !this.isClosed) await this.conn.closeWrite();
    } catch (e) {
      return this.#broken(e as Error);
    } finally {
      this.#flushing = false;
    }
    if (this.#drainWanted) {
      this.#drainWanted = false;
      this.onDrain?.();
    }
  }

  /** The next bytes to write: small queued pieces gathered into one buffer (one syscall). */
  #take(): Uint8Array {
    const q = this.#queue;
    let n = 0;
    let count = 0;
    while (count < q.length && n + q[count].byteLength <= GATHER_LIMIT) n += q[count++].byteLength;
    if (count <= 1) return q.shift()!;
    const out = new Uint8Array(n);
    let off = 0;
    for (let i = 0; i < count; i++) {
      out.set(q[i], off);
      off += q[i].byteLength;
    }
    q.splice(0, count);
    return out;
  }

  /** Back to the pool after a complete exchange (or closed when the pool is full). */
  release(): void {
    this.owner = null;
    this.onDrain = null;
    if (this.isClosed) return;
    const pool = this.pool;
    if (!pool || this.readEnded || pool.idle.length >= MAX_IDLE || !pool.open) return this.close();
    pool.active.delete(this);
    this.conn.unref();
    pool.idle.push(this);
    this.resume();
    pool.next();
  }

  /** Leaves the pool for good (an upgraded connection belongs to its duplex). */
  detach(): void {
    this.pool?.forget(this);
    (this as { pool: LocalPool | null }).pool = null;
  }

  /** Closes the connection; an owner still attached hears `closed`. */
  close(): void {
    if (this.isClosed) return;
    const owner = this.owner;
    this.owner = null;
    this.#shut();
    owner?.closed();
  }

  #shut(): void {
    this.isClosed = true;
    this.pool?.forget(this);
    this.resume();
    try {
      this.conn.close();
    } catch { /* already closed by the runtime */ }
  }
}

/** The connections to one origin: idle ones (lifo) and the ones in use, with a cap and a queue. */
export class LocalPool {
  idle: LocalConn[] = [];
  active = new Set<LocalConn>();
  open = true;
  #dialling = 0;
  #waiting: (() => void)[] = [];

  constructor(readonly origin: URL) {}

  /** Hands `use` a connection: an idle one at once, else a new one (or the next free one at the cap). */
  acquire(connectTimeoutMs: number, use: (c: LocalConn) => void, fail: (e: Error) => void): void {
    const idle = this.idle.pop();
    if (idle) {
      idle.conn.ref();
      idle.served++;
      this.active.add(idle);
      return use(idle);
    }
    if (this.active.size + this.#dialling >= MAX_CONNECTIONS) {
      this.#waiting.push(() => this.acquire(connectTimeoutMs, use, fail));
      return;
    }
    this.#dialling++;
    dial(this.origin, connectTimeoutMs).then((conn) => {
      this.#dialling--;
      const c = new LocalConn(conn, this);
      if (!this.open) {
        c.close();
        return fail(new Error("the local connections were closed"));
      }
      this.active.add(c);
      use(c);
    }, (e) => {
      this.#dialling--;
      this.next();
      fail(e);
    });
  }

  /** A fresh connection, never a pooled one (a retry after a stale one). */
  fresh(connectTimeoutMs: number, use: (c: LocalConn) => void, fail: (e: Error) => void): void {
    const idle = this.idle;
    this.idle = [];
    this.acquire(connectTimeoutMs, use, fail);
    this.idle = idle;
  }

  forget(c: LocalConn): void {
    if (this.active.delete(c)) this.next();
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
  }

  /** Lets a queued request go when a connection frees up. */
  next(): void {
    if (this.#waiting.length > 0 && this.active.size + this.#dialling < MAX_CONNECTIONS) {
      this.#waiting.shift()!();
    }
  }

  /** Closes every connection, idle or in use (as node's Agent.destroy); the pool takes no more. */
  close(): void {
    this.open = false;
    for (const c of [...this.idle, ...this.active]) c.close();
    this.idle = [];
    this.active.clear();
  }
}

/** Connects over TCP within `ms`; failures are LocalRequestErrors (local_unreachable). */
async function dial(origin: URL, ms: number): Promise<Deno.Conn> {
  const hostname = origin.hostname.replace(/^\[|\]$/g, "");
  const port = Number(origin.port || 80);
  // The signal cancels the connect itself, so no attempt outlives its timeout.
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), ms);
  try {
    const conn = await Deno.connect({ hostname, port, signal: timeout.signal });
    conn.setNoDelay(true);
    return conn;
  } catch (e) {
    if (timeout.signal.aborted) {
      throw new LocalRequestError(
        "local_unreachable",
        `${origin.host}: connecting took longer than ${ms} ms (ETIMEDOUT)`,
        { cause: e },
      );
    }
    // Nothing listens, the name does not resolve, or the host is unreachable.
    const err = e as Error & { code?: string };
    throw new LocalRequestError(
      "local_unreachable",
      `${origin.host}: ${err.message}${err.code ? ` (${err.code})` : ""}`,
      { cause: e },
    );
  } finally {
    clearTimeout(timer);
  }
}

const pools = new Map<string, LocalPool>();

/** The pool for an http: origin. */
export function poolFor(origin: URL): LocalPool {
  const key = origin.origin;
  let pool = pools.get(key);
  if (!pool) pools.set(key, pool = new LocalPool(origin));
  return pool;
}

/** Closes every pooled connection (shutdown, tests); new requests open fresh ones. */
export function closeLocalPools(): void {
  for (const pool of pools.values()) pool.close();
  pools.clear();
}
