/**
 * The public listeners, kept behind one small interface so that switching to Deno.serve (once it
 * exposes SNI) is this file alone: HTTPS on node:http2 (HTTP/1.1 and HTTP/2, a certificate per host
 * name through SNICallback) and plain HTTP on node:http. Both hand Web Requests to one handler, and
 * HTTP/1.1 upgrades to another with the raw socket as Web streams.
 */
import http from "node:http";
import http2 from "node:http2";
import type tls from "node:tls";
import type { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import { getRequestListener } from "@hono/node-server";
import type { ListenAddress } from "../config/values.ts";

const H2_STREAM_WINDOW = 4 * 1024 * 1024;
const H2_CONNECTION_WINDOW = 8 * 1024 * 1024;

export interface RequestInfo {
  remoteAddr: string;
  proto: "http" | "https";
}

/** A raw upgraded connection: bytes from the browser and to it. */
export interface RawSocket {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
  /** Ends the connection at once. */
  destroy(): void;
}

export interface FrontHandlers {
  fetch(request: Request, info: RequestInfo): Response | Promise<Response>;
  /** An HTTP/1.1 Upgrade request (WebSocket); `request` has no body, the socket carries the rest. */
  upgrade(request: Request, socket: RawSocket, info: RequestInfo): void;
}

export interface Front {
  addr: { hostname: string; port: number };
  /** Stops accepting; open connections finish (or are cut after the grace period by the caller). */
  close(): Promise<void>;
  /** Cuts every open connection. */
  destroyConnections(): void;
}

export interface HttpsFrontOptions {
  listen: ListenAddress;
  /** Certificate for connections without SNI. */
  defaultCert: { cert: string; key: string };
  sni(servername: string): Promise<tls.SecureContext>;
  handlers: FrontHandlers;
}

/** Wraps a node socket as Web streams, with backpressure both ways. */
export function rawSocket(socket: Duplex, head: Uint8Array): RawSocket {
  const readable = new ReadableStream<Uint8Array>({
    start(controller) {
      if (head.byteLength) controller.enqueue(new Uint8Array(head));
      socket.on("data", (chunk: Buffer) => {
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 0) <= 0) socket.pause();
      });
      socket.on("end", () => {
        try {
          controller.close();
        } catch { /* already errored */ }
      });
      socket.on("error", (e: Error) => {
        try {
          controller.error(e);
        } catch { /* already closed */ }
      });
      socket.on("close", () => {
        try {
          controller.close();
        } catch { /* already closed or errored */ }
      });
    },
    pull() {
      socket.resume();
    },
    cancel() {
      socket.destroy();
    },
  }, { highWaterMark: 4 });
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      if (socket.destroyed) throw new Error("socket closed");
      return new Promise<void>((resolve, reject) => {
        const ok = socket.write(chunk, (err?: Error | null) => (err ? reject(err) : undefined));
        if (ok) resolve();
        else socket.once("drain", () => resolve());
      });
    },
    close() {
      socket.end();
    },
    abort() {
      socket.destroy();
    },
  });
  return { readable, writable, destroy: () => socket.destroy() };
}

function upgradeRequest(req: http.IncomingMessage, proto: "http" | "https"): Request {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  const host = req.headers.host ?? "invalid";
  return new Request(`${proto}://${host}${req.url ?? "/"}`, { method: req.method, headers });
}

function remoteOf(socket: { remoteAddress?: string } | undefined): string {
  return (socket?.remoteAddress ?? "").replace(/^::ffff:/, "");
}

type NodeServer = http.Server | http2.Http2SecureServer;

function track(server: NodeServer) {
  const sockets = new Set<Duplex>();
  server.on("connection", (s: Duplex) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("secureConnection", (s: Duplex) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  return sockets;
}

function wire(server: NodeServer, proto: "http" | "https", handlers: FrontHandlers) {
  const listener = getRequestListener(
    (request, env) => handlers.fetch(request, { remoteAddr: remoteOf(env.incoming.socket), proto }),
    { overrideGlobalObjects: false },
  );
  server.on("request", listener);
  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => {});
    handlers.upgrade(upgradeRequest(req, proto), rawSocket(socket, head), {
      remoteAddr: remoteOf(req.socket),
      proto,
    });
  });
}

async function listen(server: NodeServer, addr: ListenAddress, sockets: Set<Duplex>): Promise<Front> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(addr.port, addr.hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address() as { address: string; port: number };
  return {
    addr: { hostname: bound.address, port: bound.port },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    destroyConnections() {
      for (const s of sockets) s.destroy();
    },
  };
}

/** Starts the HTTPS listener (HTTP/2 with HTTP/1.1 fallback). */
export function startHttpsFront(options: HttpsFrontOptions): Promise<Front> {
  const server = http2.createSecureServer({
    allowHTTP1: true,
    // Node's 64 KiB default windows cap an HTTP/2 upload at one window per round trip.
    settings: { initialWindowSize: H2_STREAM_WINDOW },
    cert: options.defaultCert.cert,
    key: options.defaultCert.key,
    SNICallback: (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => {
      options.sni(servername).then((ctx) => cb(null, ctx), (err) => cb(err as Error));
    },
  });
  const sockets = track(server);
  server.on("session", (session: http2.ServerHttp2Session) => {
    try {
      session.setLocalWindowSize(H2_CONNECTION_WINDOW);
    } catch { /* the session is already gone */ }
  });
  wire(server, "https", options.handlers);
  // A stream error on HTTP/2 must not take the process down.
  server.on("sessionError", () => {});
  return listen(server, options.listen, sockets);
}

/** Starts the plain HTTP listener. */
export function startHttpFront(listenAddr: ListenAddress, handlers: FrontHandlers): Promise<Front> {
  const server = http.createServer();
  const sockets = track(server);
  wire(server, "http", handlers);
  server.on("clientError", (_err: Error, socket: Duplex) => {
    if (!socket.destroyed) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
  });
  return listen(server, listenAddr, sockets);
}
