/**
 * h2c (HTTP/2 with prior knowledge) to the local service through node:http2: one session per
 * origin, reused by every request and re-created once it is going away, closed or failed. gRPC
 * needs this: its status travels in trailers, both ways.
 */
import http2 from "node:http2";
import type { ByteSink, HeaderLine } from "../protocol/body.ts";
import { localFailure, refuseLater, unsendable } from "./local_failure.ts";
import type {
  LocalExchange,
  LocalHttpOptions,
  LocalRequest,
  LocalResponseHandler,
} from "./local_http_types.ts";
import { headerPairs, pipeToSink, pumpBody } from "./local_node_body.ts";
import { H2_CONNECTION_SPECIFIC } from "./headers.ts";

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** A response head up to this size passes (as over HTTP/1.1). */
const MAX_RESPONSE_HEAD = 512 * 1024;

interface OriginSession {
  session: http2.ClientHttp2Session;
  /** Set when the session failed; requests that did not get a head report it. */
  error?: Error;
  /** Streams in flight: an idle session must not keep the process alive (as node:http's free sockets). */
  active: number;
}

const sessions = new Map<string, OriginSession>();

function sessionFor(origin: URL, connectTimeoutMs: number): OriginSession {
  const key = origin.origin;
  const known = sessions.get(key);
  if (known && !known.session.closed && !known.session.destroyed) return known;
  const entry: OriginSession = {
    session: http2.connect(key, {
      settings: { maxHeaderListSize: MAX_RESPONSE_HEAD },
      maxHeaderListPairs: 4096,
    }),
    active: 0,
  };
  const { session } = entry;
  sessions.set(key, entry);
  const forget = () => {
    if (sessions.get(key) === entry) sessions.delete(key);
  };
  const timer = setTimeout(() => {
    const e = Object.assign(new Error(`connecting took longer than ${connectTimeoutMs} ms`), {
      code: "ETIMEDOUT",
    });
    session.destroy(e);
  }, connectTimeoutMs);
  session.once("connect", () => clearTimeout(timer));
  session.unref();
  session.on("goaway", forget);
  session.on("error", (e: Error) => {
    entry.error = e;
    forget();
  });
  session.once("close", () => {
    clearTimeout(timer);
    forget();
  });
  return entry;
}

/** Closes every idle h2c session (shutdown, tests); requests in flight finish first. */
export function closeH2cSessions(): void {
  for (const { session } of sessions.values()) session.close();
  sessions.clear();
}

// RFC 9113 §8.2.2 (HTTP2-Settings belongs to the h2c upgrade only). Content-Length is set once from
// the request's own length (h2cHeaderObject), not copied from the lines.
const NOT_SENT = new Set([...H2_CONNECTION_SPECIFIC, "http2-settings", "content-length"]);

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const FORBIDDEN_IN_VALUE = /[\0\r\n]/;

/**
 * The HTTP/2 request header block: pseudo-headers first (`:authority` from the first Host line,
 * else the origin), then the lines lower-cased in order; repeated names become one array, so lines
 * of one name keep their order (HTTP/2 gives no meaning to the order between different names).
 */
export function h2cHeaderObject(origin: URL, req: LocalRequest): http2.OutgoingHttpHeaders {
  let authority: string | undefined;
  const rest: Record<string, string | string[]> = {};
  for (const [name, value] of req.headers) {
    const lower = name.toLowerCase();
    // Deno's http2 client sends whatever it is given; RFC 9113 §8.2.1 forbids these.
    if (!TOKEN.test(lower) || FORBIDDEN_IN_VALUE.test(value)) {
      throw new TypeError(`header ${JSON.stringify(name)} has an invalid name or value for HTTP/2`);
    }
    if (lower === "host") {
      authority ??= value;
      continue;
    }
    if (NOT_SENT.has(lower) || (lower === "te" && value.trim().toLowerCase() !== "trailers")) {
      continue;
    }
    const prior = rest[lower];
    if (prior === undefined) rest[lower] = value;
    else if (Array.isArray(prior)) prior.push(value);
    else rest[lower] = [prior, value];
  }
  const out: http2.OutgoingHttpHeaders = {
    ":method": req.method,
    ":scheme": "http",
    ":authority": authority ?? origin.host,
    ":path": req.target,
  };
  if (req.contentLength !== undefined) out["content-length"] = String(req.contentLength);
  return Object.assign(out, rest);
}

/** Header lines of node's raw list without the pseudo-headers. */
function regularLines(raw: readonly string[]): HeaderLine[] {
  return headerPairs(raw).filter(([n]) => !n.startsWith(":"));
}

function trailerObject(lines: HeaderLine[]): http2.OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of lines) {
    const lower = name.toLowerCase();
    if (!TOKEN.test(lower) || FORBIDDEN_IN_VALUE.test(value)) {
      throw new TypeError(`trailer ${JSON.stringify(name)} has an invalid name or value for HTTP/2`);
    }
    const prior = out[lower];
    if (prior === undefined) out[lower] = value;
    else if (Array.isArray(prior)) prior.push(value);
    else out[lower] = [prior, value];
  }
  return out;
}

/** Sends one request over the origin's h2c session; see sendLocal. */
export function sendH2c(
  origin: URL,
  req: LocalRequest,
  handler: LocalResponseHandler,
  opts: LocalHttpOptions,
): LocalExchange {
  const entry = sessionFor(origin, opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
  let answered = false;
  let done = false;
  let sink: ByteSink | null = null;
  let bodyOpen = req.body !== null;
  let trailers: HeaderLine[] | null = null;
  let requestTrailers: HeaderLine[] | null = null;

  let stream: http2.ClientHttp2Stream;
  const fail = (e: Error, silent = false) => {
    if (done) return;
    done = true;
    if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
    if (bodyOpen) {
      bodyOpen = false;
      req.body!.cancel(e);
    }
    if (sink) sink.abort(e);
    else if (!silent && !answered) handler.error(localFailure(origin, entry.error ?? e));
  };

  try {
    stream = entry.session.request(h2cHeaderObject(origin, req), {
      endStream: req.body === null,
      waitForTrailers: req.body !== null,
    });
  } catch (e) {
    const error = entry.session.destroyed
      ? localFailure(origin, entry.error ?? e as Error)
      : unsendable(origin, e as Error);
    return refuseLater(error, handler, req.body);
  }
  if (entry.active++ === 0) entry.session.ref();
  stream.once("close", () => {
    if (--entry.active === 0 && !entry.session.destroyed) entry.session.unref();
  });
  stream.on("wantTrailers", () => {
    try {
      stream.sendTrailers(requestTrailers?.length ? trailerObject(requestTrailers) : {});
    } catch (e) {
      fail(unsendable(origin, e as Error));
    }
  });
  stream.on("error", (e: Error) => fail(e));
  stream.on("trailers", (_headers, _flags, raw?: string[]) => {
    trailers = raw ? regularLines(raw) : null;
  });
  stream.on("close", () => {
    if (!done) {
      const code = stream.rstCode;
      fail(entry.error ?? new Error(`the local h2c stream closed early (RST_STREAM code ${code ?? "none"})`));
    }
  });
  stream.once("response", (headers, _flags, raw?: string[]) => {
    if (done) return;
    answered = true;
    const lines = raw ? regularLines(raw) : headerPairs(
      Object.entries(headers).flatMap(([n, v]) =>
        n.startsWith(":") ? [] : (Array.isArray(v) ? v : [String(v)]).flatMap((x) => [n, x])
      ),
    );
    const status = Number(headers[":status"]);
    sink = handler.head(status, "", lines);
    pipeToSink(stream, sink);
    // Deno's node:http2 client reports a stream the service reset mid-body (RST_STREAM) as a clean
    // end. A declared length catches a short body, and a gRPC answer always ends with grpc-status.
    const bodiless = req.method === "HEAD" || status === 204 || status === 304;
    const declared = bodiless ? NaN : Number(headers["content-length"]);
    const grpc = String(headers["content-type"] ?? "").startsWith("application/grpc") &&
      headers["grpc-status"] === undefined;
    let received = 0;
    if (Number.isSafeInteger(declared)) stream.on("data", (c: Uint8Array) => received += c.byteLength);
    stream.once("end", () => {
      if (done) return;
      if (Number.isSafeInteger(declared) && received !== declared) {
        return fail(new Error(`the local h2c answer ended after ${received} of its ${declared} bytes`));
      }
      if (grpc && !trailers?.some(([n]) => n === "grpc-status")) {
        return fail(new Error("the local gRPC answer ended without grpc-status (reset by the service)"));
      }
      done = true;
      sink!.end(trailers);
      // The answer is complete while the upload goes on (a gRPC error mid client-stream).
      if (bodyOpen) {
        bodyOpen = false;
        req.body!.cancel();
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
      }
    });
  });
  if (req.body) {
    pumpBody(req.body, stream, {
      end(t) {
        bodyOpen = false;
        requestTrailers = t;
        stream.end();
      },
      error(e) {
        bodyOpen = false;
        fail(new Error(`the request body failed: ${e.message}`, { cause: e }));
      },
    });
  }
  return {
    abort(reason) {
      fail(reason ?? new Error("local request aborted"), true);
    },
  };
}
