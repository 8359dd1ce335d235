/**
 * The HTTP/2 side of the HTTPS front: node:http2 streams turned into FrontRequests (:authority
 * wins over host, :path as received, header lines in order with duplicates) and FrontResponses
 * written with stream.respond, backpressure, and trailers both ways.
 */
import http2 from "node:http2";
import type { Buffer } from "node:buffer";
import type { Duplex } from "node:stream";
import type { ByteConsumer, ByteSink, ByteSource, HeaderLine, RawDuplex } from "../protocol/body.ts";
import { H2_CONNECTION_SPECIFIC } from "./headers.ts";
import type { FrontHandler, FrontRequest, FrontResponse } from "./front_types.ts";
import type { Logger } from "../log/logger.ts";

const H2_STREAM_WINDOW = 4 * 1024 * 1024;
const H2_CONNECTION_WINDOW = 8 * 1024 * 1024;
/** Large enough for 64 KB of headers or hundreds of lines either way. */
const MAX_HEADER_BYTES = 256 * 1024;
const MAX_HEADER_PAIRS = 4096;

interface Remote {
  addr: string;
  port: number;
}

export interface H2Front {
  /** Serves HTTP/2 on a TLS socket whose ALPN chose "h2"; returns a graceful close (GOAWAY). */
  serve(socket: Duplex, remote: Remote): () => void;
}

/** Builds the HTTP/2 server that serves sockets handed to it (it never listens itself). */
export function createH2Front(handler: FrontHandler, idleTimeoutMs: number, logger?: Logger): H2Front {
  const server = http2.createServer({
    settings: { initialWindowSize: H2_STREAM_WINDOW, maxHeaderListSize: MAX_HEADER_BYTES },
    maxHeaderListPairs: MAX_HEADER_PAIRS,
    maxSendHeaderBlockLength: MAX_HEADER_BYTES,
    maxSessionMemory: 64,
  } as http2.ServerOptions);
  const remotes = new WeakMap<http2.Http2Session, Remote>();
  let pending: Remote | null = null;
  let created: http2.ServerHttp2Session | null = null;
  server.on("session", (session: http2.ServerHttp2Session) => {
    created = session;
    if (pending) remotes.set(session, pending);
    session.on("error", () => {});
    // No frames for the idle time: GOAWAY, so idle connections do not pile up (issue 11 item 1).
    session.setTimeout(idleTimeoutMs, () => session.close());
    try {
      session.setLocalWindowSize(H2_CONNECTION_WINDOW);
    } catch { /* the session is already gone */ }
  });
  server.on("sessionError", () => {});
  server.on(
    "stream",
    (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, raw: string[]) => {
      stream.on("error", () => {});
      const remote = remotes.get(stream.session as http2.Http2Session) ?? { addr: "", port: 0 };
      const failed = (e: unknown) => {
        logger?.error({ err: String(e) }, "front handler failed (h2)");
        if (stream.destroyed) return;
        if (!stream.headersSent) stream.respond({ ":status": 500 }, { endStream: true });
        else stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      };
      try {
        // An async handler's rejection must not become an unhandled rejection (Deno exits on those).
        const r = handler(...exchange(stream, headers, raw, remote)) as unknown;
        if (r instanceof Promise) r.catch(failed);
      } catch (e) {
        failed(e);
      }
    },
  );
  return {
    serve(socket, remote) {
      pending = remote;
      created = null;
      server.emit("connection", socket);
      pending = null;
      const session = created as http2.ServerHttp2Session | null;
      return () => {
        if (session && !session.closed) session.close();
        else socket.destroy();
      };
    },
  };
}

function exchange(
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  raw: string[],
  remote: Remote,
): [FrontRequest, FrontResponse] {
  const lines: HeaderLine[] = [];
  let host = "";
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.charCodeAt(0) === 58) continue;
    if (name === "host" && !host) host = raw[i + 1];
    lines.push([name, raw[i + 1]]);
  }
  const cl = headers["content-length"];
  const contentLength = typeof cl === "string" && /^\d{1,15}$/.test(cl) ? Number(cl) : undefined;
  const aborts: (() => void)[] = [];
  let done = false;
  const method = String(headers[":method"] ?? "GET");
  const request: FrontRequest = {
    method,
    target: String(headers[":path"] ?? ""),
    headers: lines,
    authority: String(headers[":authority"] ?? host),
    httpVersion: "2",
    remoteAddr: remote.addr,
    remotePort: remote.port,
    proto: "https",
    body: stream.endAfterHeaders ? null : streamSource(stream),
    contentLength,
    upgrade: false,
    onAbort: (cb) => aborts.push(cb),
  };
  stream.on("close", () => {
    if (!done) { for (const cb of aborts.splice(0)) cb(); }
  });
  let trailers: HeaderLine[] | null = null;
  let bodyless = false;
  let drain: (() => void) | null = null;
  stream.on("drain", () => drain?.());
  // The head waits for the end of the current task: a head whose body ends at once (a bodiless answer,
  // gRPC's trailers-only error) goes as one HEADERS frame with END_STREAM, which gRPC clients need to
  // read the status; any other head leaves before the first body byte.
  let pending: Record<string, string | string[]> | null = null;
  const sendHead = (endStream: boolean) => {
    if (pending === null) return;
    const out = pending;
    pending = null;
    if (stream.destroyed) return;
    const ends = endStream || bodyless;
    stream.respond(
      out,
      { endStream: ends, waitForTrailers: !ends, sendDate: false } as http2.ServerStreamResponseOptions,
    );
    if (!ends) {
      stream.on("wantTrailers", () => {
        try {
          stream.sendTrailers(trailers ? headerObject(trailers) : {});
        } catch {
          stream.close();
        }
      });
    }
  };
  const response: FrontResponse = {
    headSent: false,
    head(status, _statusText, headerLines) {
      if (response.headSent) throw new Error("response head already sent");
      if (status < 200) return; // interim responses are not relayed on HTTP/2
      (response as { headSent: boolean }).headSent = true;
      bodyless = method === "HEAD" || status === 204 || status === 304;
      const out = headerObject(headerLines);
      out[":status"] = String(status);
      pending = out;
      if (bodyless) {
        done = true;
        sendHead(true);
      } else queueMicrotask(() => sendHead(false));
    },
    body: {
      write(chunk) {
        if (bodyless || stream.destroyed || done) return true;
        sendHead(false);
        return stream.write(chunk);
      },
      onDrain(cb) {
        drain = cb;
      },
      end(t) {
        if (done) return;
        done = true;
        if (bodyless || stream.destroyed) return;
        trailers = t && t.length > 0 ? t : null;
        if (pending !== null && trailers === null) return sendHead(true);
        sendHead(false);
        stream.end();
      },
      abort() {
        done = true;
        pending = null;
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      },
    } satisfies ByteSink,
    switchProtocols(): RawDuplex {
      throw new Error("switchProtocols is HTTP/1.1 only");
    },
  };
  return [request, response];
}

/** Header lines as node:http2's object: lower-case names, arrays for repeated names, order kept. */
export function headerObject(lines: HeaderLine[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [n, v] of lines) {
    const name = n.toLowerCase();
    if (H2_CONNECTION_SPECIFIC.has(name) || name.charCodeAt(0) === 58) continue;
    const prev = out[name];
    if (prev === undefined) out[name] = v;
    else if (Array.isArray(prev)) prev.push(v);
    else out[name] = [prev, v];
  }
  return out;
}

function streamSource(stream: http2.ServerHttp2Stream): ByteSource {
  let trailers: HeaderLine[] | null = null;
  stream.pause();
  stream.on("trailers", (_h: unknown, _f: unknown, raw: string[]) => {
    const t: HeaderLine[] = [];
    for (let i = 0; i < (raw?.length ?? 0); i += 2) {
      if (raw[i].charCodeAt(0) !== 58) t.push([raw[i], raw[i + 1]]);
    }
    trailers = t.length ? t : null;
  });
  return {
    start(consumer: ByteConsumer) {
      let finished = false;
      stream.on("data", (b: Buffer) => consumer.data(new Uint8Array(b.buffer, b.byteOffset, b.byteLength)));
      stream.on("end", () => {
        if (finished) return;
        finished = true;
        consumer.end(trailers);
      });
      stream.on("close", () => {
        if (finished) return;
        finished = true;
        consumer.error(new Error("HTTP/2 stream closed before the request body ended"));
      });
      stream.resume();
    },
    pause: () => stream.pause(),
    resume: () => stream.resume(),
    cancel: () => {
      // Stop reading and let the flow-control window absorb the rest; the response still goes out.
      stream.removeAllListeners("data");
      stream.resume();
    },
  };
}
