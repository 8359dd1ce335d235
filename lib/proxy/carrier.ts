/**
 * A byte connection as the HTTP/1.1 driver sees it: data events, writes with a high-water mark,
 * pause/resume, and a graceful end. Two carriers: a Deno.Conn (plain HTTP, read into a buffer we
 * copy out of) and a node socket (TLS). Writes made in one tick leave in one write call.
 */
import type { Buffer } from "node:buffer";
import type { Duplex } from "node:stream";

export interface CarrierEvents {
  data(chunk: Uint8Array): void;
  /** The peer finished sending (FIN). */
  end(): void;
  /** The connection is gone (after end, error or destroy); fires once. */
  close(): void;
}

export interface Carrier {
  readonly remoteAddr: string;
  readonly remotePort: number;
  /** Starts delivering events. */
  listen(events: CarrierEvents): void;
  /** Queues bytes; false when above the high-water mark (wait for drain). The chunk changes owner. */
  write(chunk: Uint8Array): boolean;
  /** Called each time the queue drains after a write returned false. */
  onDrain(callback: () => void): void;
  pause(): void;
  resume(): void;
  /** Flushes what is queued, then closes (the peer's late bytes are read and dropped briefly). */
  end(): void;
  destroy(): void;
  readonly closed: boolean;
}

const HIGH_WATER = 64 * 1024;
const READ_SIZE = 64 * 1024;
/** How long an ended connection keeps reading (and dropping) so the peer sees our last bytes, not a reset. */
const LINGER_MS = 2000;

/** Strips the IPv4-mapped prefix from an address. */
export function unmapAddress(address: string | undefined): string {
  return (address ?? "").replace(/^::ffff:/, "");
}

/** A carrier over a Deno TCP connection. */
export function denoCarrier(conn: Deno.Conn): Carrier {
  const addr = conn.remoteAddr as Deno.NetAddr;
  let events: CarrierEvents | null = null;
  let queue: Uint8Array[] = [];
  let queued = 0;
  let flushing = false;
  let wantDrain = false;
  let drain: (() => void) | null = null;
  let paused = false;
  let wake: (() => void) | null = null;
  let ending = false;
  let closed = false;
  let eof = false;
  let linger: ReturnType<typeof setTimeout> | undefined;

  const close = () => {
    if (closed) return;
    closed = true;
    clearTimeout(linger);
    try {
      conn.close();
    } catch { /* already closed */ }
    wake?.();
    events?.close();
  };

  const readLoop = async () => {
    const buf = new Uint8Array(READ_SIZE);
    while (!closed) {
      if (paused && !ending) await new Promise<void>((r) => (wake = r));
      wake = null;
      if (closed) return;
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch {
        n = null;
        if (!ending) return close();
      }
      if (n === null) {
        eof = true;
        if (ending && !flushing) return close();
        if (!ending) events?.end();
        return;
      }
      if (!ending) events?.data(buf.slice(0, n));
    }
  };

  const flush = async () => {
    flushing = true;
    while (queue.length > 0 && !closed) {
      let out: Uint8Array;
      if (queue.length === 1) out = queue[0];
      else {
        out = new Uint8Array(queued);
        let o = 0;
        for (const c of queue) {
          out.set(c, o);
          o += c.byteLength;
        }
      }
      queue = [];
      try {
        let off = 0;
        while (off < out.byteLength) off += await conn.write(off ? out.subarray(off) : out);
      } catch {
        flushing = false;
        return close();
      }
      queued -= out.byteLength;
      if (wantDrain && queued < HIGH_WATER) {
        wantDrain = false;
        drain?.();
      }
    }
    flushing = false;
    if (ending && !closed) {
      try {
        await conn.closeWrite();
      } catch { /* peer gone */ }
      if (eof) close();
      else linger = setTimeout(close, LINGER_MS);
    }
  };

  return {
    remoteAddr: unmapAddress(addr.hostname),
    remotePort: addr.port,
    get closed() {
      return closed;
    },
    listen(e) {
      events = e;
      readLoop();
    },
    write(chunk) {
      if (closed || ending) return true;
      queue.push(chunk);
      queued += chunk.byteLength;
      if (!flushing) {
        flushing = true;
        queueMicrotask(flush);
      }
      if (queued >= HIGH_WATER) wantDrain = true;
      return queued < HIGH_WATER;
    },
    onDrain(cb) {
      drain = cb;
    },
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
      wake?.();
    },
    end() {
      if (ending || closed) return;
      ending = true;
      paused = false;
      wake?.();
      if (!flushing) {
        flushing = true;
        queueMicrotask(flush);
      }
    },
    destroy: close,
  };
}

/** A carrier over a node socket (a TLS socket after the handshake). */
export function socketCarrier(socket: Duplex, remoteAddr: string, remotePort: number): Carrier {
  let corked = false;
  let closed = false;
  let ending = false;
  let drain: (() => void) | null = null;
  socket.on("error", () => {});
  socket.on("drain", () => drain?.());
  return {
    remoteAddr,
    remotePort,
    get closed() {
      return closed || socket.destroyed;
    },
    listen(e) {
      socket.on("data", (b: Buffer) => {
        if (!ending) e.data(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
      });
      socket.on("end", () => {
        if (!ending) e.end();
      });
      socket.on("close", () => {
        closed = true;
        e.close();
      });
    },
    write(chunk) {
      if (closed || socket.destroyed) return true;
      if (!corked) {
        corked = true;
        socket.cork();
        queueMicrotask(() => {
          corked = false;
          socket.uncork();
        });
      }
      return socket.write(chunk);
    },
    onDrain(cb) {
      drain = cb;
    },
    pause() {
      socket.pause();
    },
    resume() {
      socket.resume();
    },
    end() {
      if (ending) return;
      ending = true;
      socket.resume();
      socket.end();
      setTimeout(() => socket.destroy(), LINGER_MS).unref?.();
    },
    destroy() {
      socket.destroy();
    },
  };
}
