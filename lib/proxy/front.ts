/**
 * The public listeners. Plain HTTP: Deno.listen + our HTTP/1.1 driver. HTTPS: Deno.listen, node:tls
 * per connection (a certificate per SNI name), then by ALPN: "h2" → node:http2 adapter,
 * "hopgate/1" → the tunnel's TCP carrier hook, anything else → the HTTP/1.1 driver. Both hand the
 * gateway raw requests (front_types.ts) and keep what an unauthenticated connection can hold bounded.
 */
import tls from "node:tls";
import { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import type { ListenAddress } from "../config/values.ts";
import type { Logger } from "../log/logger.ts";
import type { FrontHandler } from "./front_types.ts";
import { denoCarrier, socketCarrier } from "./carrier.ts";
import { type FrontLimits, frontLimits } from "./front_limits.ts";
import { type Clock, systemClock, type TimerId } from "../log/clock.ts";
import { serveHttp1 } from "./http1/connection.ts";
import { createH2Front } from "./front_h2.ts";
import { type AcceptLoop, startAcceptLoop } from "./listener.ts";
import { helloRecordLength, serverNameOf } from "./client_hello.ts";

export type { FrontHandler, FrontRequest, FrontResponse } from "./front_types.ts";

export interface Front {
  addr: { hostname: string; port: number };
  /** Stops accepting and closes idle keep-alive connections; active ones close after their response. */
  close(): Promise<void>;
  /** Cuts every open connection. */
  destroyConnections(): void;
  /** Open connections from an address (the per-address cap's count). */
  openFrom(address: string): number;
}

interface CommonOptions {
  listen: ListenAddress;
  handler: FrontHandler;
  limits?: Partial<FrontLimits>;
  logger?: Logger;
  clock?: Clock;
}

export type HttpFrontOptions = CommonOptions;

export interface HttpsFrontOptions extends CommonOptions {
  /** Certificate for connections without SNI. */
  defaultCert: { cert: string; key: string };
  sni(servername: string): Promise<tls.SecureContext>;
  /** A TLS connection whose ALPN chose "hopgate/1": the tunnel's TCP carrier. Closed when absent. */
  onTunnelSocket?(socket: tls.TLSSocket, remote: { addr: string; port: number }): void;
}

export const ALPN_PROTOCOLS = ["h2", "http/1.1", "hopgate/1"];

interface Tracked {
  closeIdle(): void;
  destroy(): void;
}

function frontOf(loop: AcceptLoop, open: Set<Tracked>): Front {
  return {
    addr: loop.addr,
    async close() {
      await loop.close();
      for (const t of open) t.closeIdle();
    },
    destroyConnections() {
      for (const t of open) t.destroy();
    },
    openFrom: loop.openFrom,
  };
}

/** Starts the plain HTTP/1.1 listener. */
export function startHttpFront(options: HttpFrontOptions): Promise<Front> {
  const limits = frontLimits(options.limits);
  const clock = options.clock ?? systemClock;
  const open = new Set<Tracked>();
  const loop = startAcceptLoop(options.listen, limits, options.logger, (a) => {
    const carrier = denoCarrier(a.conn);
    const origListen = carrier.listen;
    const tracked: Tracked = { closeIdle: () => {}, destroy: () => carrier.destroy() };
    open.add(tracked);
    carrier.listen = (events) =>
      origListen({
        ...events,
        close() {
          open.delete(tracked);
          a.release();
          events.close();
        },
      });
    tracked.closeIdle =
      serveHttp1(carrier, { handler: options.handler, proto: "http", limits, clock, logger: options.logger })
        .closeIdle;
  });
  return Promise.resolve(frontOf(loop, open));
}

/** A Deno.Conn as a node Duplex, so node:tls can run over it. */
function connDuplex(conn: Deno.Conn, prefix: Uint8Array | null): Duplex {
  let reading = false;
  const buf = new Uint8Array(64 * 1024);
  const d: Duplex = new Duplex({
    read() {
      if (prefix) {
        const p = Buffer.from(prefix);
        prefix = null;
        if (!d.push(p)) return;
      }
      if (reading) return;
      reading = true;
      (async () => {
        while (true) {
          let n: number | null;
          try {
            n = await conn.read(buf);
          } catch {
            n = null;
          }
          if (n === null) {
            d.push(null);
            return;
          }
          if (!d.push(Buffer.from(buf.subarray(0, n)))) {
            reading = false;
            return;
          }
        }
      })();
    },
    async write(chunk: Uint8Array, _enc: string, cb: (e?: Error | null) => void) {
      try {
        let off = 0;
        while (off < chunk.byteLength) off += await conn.write(off ? chunk.subarray(off) : chunk);
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
    async writev(chunks: { chunk: Uint8Array }[], cb: (e?: Error | null) => void) {
      const total = chunks.reduce((s, c) => s + c.chunk.byteLength, 0);
      const out = new Uint8Array(total);
      let o = 0;
      for (const c of chunks) {
        out.set(c.chunk, o);
        o += c.chunk.byteLength;
      }
      try {
        let off = 0;
        while (off < total) off += await conn.write(off ? out.subarray(off) : out);
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
    final(cb: (e?: Error | null) => void) {
      conn.closeWrite().then(() => cb(), () => cb());
    },
    destroy(_e: Error | null, cb: (e: Error | null) => void) {
      try {
        conn.close();
      } catch { /* already closed */ }
      cb(null);
    },
  });
  return d;
}

interface PendingTls {
  remoteAddr: string;
  remotePort: number;
  handshake: TimerId;
  tracked: Tracked;
}

/**
 * The TLS socket's underlying duplex. node:tls (as Deno 2.9 implements it) keeps it at
 * `_handle._parentWrap.stream`; the front tests fail if that ever changes.
 */
function duplexOf(socket: tls.TLSSocket): Duplex | undefined {
  return (socket as unknown as { _handle?: { _parentWrap?: { stream?: Duplex } } })._handle?._parentWrap
    ?.stream;
}

/** Reads until the first TLS record is complete (or 16 KiB); null when the peer left. */
async function readHello(conn: Deno.Conn): Promise<Uint8Array | null> {
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(16 * 1024 + 5);
  while (buf.length < chunk.length) {
    let n: number | null;
    try {
      n = await conn.read(chunk);
    } catch {
      return null;
    }
    if (n === null) return null;
    const next = new Uint8Array(buf.length + n);
    next.set(buf);
    next.set(chunk.subarray(0, n), buf.length);
    buf = next;
    if (helloRecordLength(buf) !== -1) return buf;
  }
  return buf;
}

/** Starts the HTTPS listener: HTTP/1.1 and HTTP/2 by ALPN, a certificate per SNI name. */
export function startHttpsFront(options: HttpsFrontOptions): Promise<Front> {
  const limits = frontLimits(options.limits);
  const clock = options.clock ?? systemClock;
  const logger = options.logger;
  const h2 = createH2Front(options.handler, limits.idleTimeoutMs, logger);
  const open = new Set<Tracked>();
  const pending = new WeakMap<Duplex, PendingTls>();
  // Never listens: connections accepted by our own loop are emitted into it (node:net's accept
  // loop dies for good after EMFILE under Deno; ours backs off and recovers).
  const server = tls.createServer({
    cert: options.defaultCert.cert,
    key: options.defaultCert.key,
    ALPNProtocols: ALPN_PROTOCOLS,
    SNICallback: (name: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) =>
      sniCallback(name, cb),
  });
  server.on("tlsClientError", () => {});
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    const raw = duplexOf(socket);
    const p = raw && pending.get(raw);
    if (!raw || !p) {
      logger?.error({}, "TLS connection without its accepted socket: closing it");
      return socket.destroy();
    }
    pending.delete(raw);
    clock.clearTimeout(p.handshake);
    socket.on("error", () => socket.destroy());
    p.tracked.destroy = () => socket.destroy();
    p.tracked.closeIdle = () => socket.destroy();
    const alpn = socket.alpnProtocol;
    if (alpn === "h2") {
      p.tracked.closeIdle = h2.serve(socket, { addr: p.remoteAddr, port: p.remotePort });
    } else if (alpn === "hopgate/1") {
      // The tunnel layer owns its shutdown (it tells clients first): close() leaves it alone.
      p.tracked.closeIdle = () => {};
      if (options.onTunnelSocket) options.onTunnelSocket(socket, { addr: p.remoteAddr, port: p.remotePort });
      else socket.destroy();
    } else {
      const carrier = socketCarrier(socket, p.remoteAddr, p.remotePort);
      p.tracked.closeIdle =
        serveHttp1(carrier, { handler: options.handler, proto: "https", limits, clock, logger })
          .closeIdle;
    }
  });
  // Contexts resolved from the ClientHello before the handshake, for the SNI callback to answer at once.
  const resolved = new Map<string, tls.SecureContext>();
  const sniCallback = (name: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => {
    if (!name) return cb(null, undefined); // no SNI: the default certificate
    const ctx = resolved.get(name.toLowerCase());
    if (ctx) return cb(null, ctx);
    options.sni(name).then((c) => cb(null, c), (err) => cb(err as Error));
  };
  const loop = startAcceptLoop(options.listen, limits, logger, (a) => {
    const tracked: Tracked = { closeIdle: () => a.conn.close(), destroy: () => a.conn.close() };
    open.add(tracked);
    let gone = false;
    const closeRaw = () => {
      if (gone) return;
      gone = true;
      open.delete(tracked);
      a.release();
      try {
        a.conn.close();
      } catch { /* already closed */ }
    };
    // A trickled or absent ClientHello must not hold a connection (issue 11 item 1).
    const handshakeDeadline = clock.now() + limits.handshakeTimeoutMs;
    const handshake = clock.setTimeout(closeRaw, limits.handshakeTimeoutMs);
    readHello(a.conn).then(async (hello) => {
      if (!hello || gone) {
        clock.clearTimeout(handshake);
        return closeRaw();
      }
      const name = serverNameOf(hello);
      if (name) {
        // Asked on every connection (the store caches): a renewed certificate is served at once.
        try {
          const ctx = await options.sni(name);
          resolved.delete(name);
          if (resolved.size >= 1024) resolved.delete(resolved.keys().next().value!);
          resolved.set(name, ctx);
        } catch { /* unknown name: the default certificate answers */ }
      }
      if (gone) return;
      gone = true; // from here the duplex owns the connection and its slot
      const raw = connDuplex(a.conn, hello);
      tracked.closeIdle = tracked.destroy = () => raw.destroy();
      raw.on("error", () => {});
      // A peer that leaves before the handshake completes frees its descriptor now.
      raw.on("end", () => pending.has(raw) && raw.destroy());
      raw.on("close", () => {
        const p = pending.get(raw);
        if (p) clock.clearTimeout(p.handshake);
        open.delete(tracked);
        a.release();
      });
      clock.clearTimeout(handshake);
      const rest = clock.setTimeout(() => raw.destroy(), Math.max(0, handshakeDeadline - clock.now()));
      pending.set(raw, { remoteAddr: a.remoteAddr, remotePort: a.remotePort, handshake: rest, tracked });
      server.emit("connection", raw);
    });
  });
  return Promise.resolve(frontOf(loop, open));
}
