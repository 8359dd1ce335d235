/**
 * The client's byte-faithful HTTP client for the local service: replays a tunnelled request
 * against 127.0.0.1:PORT (or any http:/https: origin) and streams the answer back through callback
 * bodies. Nothing is decoded and nothing is added but the framing lines (`Connection: keep-alive`,
 * `Transfer-Encoding: chunked`, `Content-Length: 0` for a bodiless POST/PUT) of HTTP/1.1, or the
 * pseudo-headers of HTTP/2.
 *
 * HTTP/1.1 goes through node:http with a keep-alive Agent per origin (local_h1.ts); h2c (HTTP/2
 * with prior knowledge, gRPC) through one node:http2 session per origin (local_h2c.ts). Chosen by
 * measurement (scripts/bench_local_http.ts): node:http under Deno is faithful on the wire (raw header
 * arrays keep order, case and duplicates; byte-string targets pass) and the cheapest per request.
 *
 * For the caller: response header lines come raw (drop hop-by-hop ones before forwarding); h2c
 * answers have no reason phrase (statusText ""); request trailers are dropped when `contentLength`
 * is set (only a chunked HTTP/1.1 body or h2c can carry them); call `closeLocalConnections()` at
 * shutdown. Deno's http2 client reports a reset h2c stream as a clean end: a short body against its
 * Content-Length, or a gRPC answer without grpc-status, is turned back into an error here.
 */
import type {
  LocalExchange,
  LocalHttpOptions,
  LocalRequest,
  LocalResponseHandler,
} from "./local_http_types.ts";
import { closeH1Agents, sendH1 } from "./local_h1.ts";
import { closeH2cSessions, sendH2c } from "./local_h2c.ts";

export * from "./local_http_types.ts";

/** Sends one request to the local service at `origin` (http: or https:; h2c uses http:). */
export function sendLocal(
  origin: URL,
  req: LocalRequest,
  handler: LocalResponseHandler,
  opts: LocalHttpOptions = {},
): LocalExchange {
  if (origin.protocol !== "http:" && origin.protocol !== "https:") {
    throw new TypeError(`sendLocal: origin must be http: or https: (got ${origin.protocol})`);
  }
  if (req.protocol === "h2c" && (origin.protocol !== "http:" || req.upgrade)) {
    throw new TypeError(`sendLocal: h2c needs an http: origin and no upgrade (got ${origin.href})`);
  }
  return req.protocol === "h2c" ? sendH2c(origin, req, handler, opts) : sendH1(origin, req, handler, opts);
}

/** Closes the pooled local connections (HTTP/1.1 keep-alive sockets, h2c sessions): at shutdown, and between tests. */
export function closeLocalConnections(): void {
  closeH1Agents();
  closeH2cSessions();
}
