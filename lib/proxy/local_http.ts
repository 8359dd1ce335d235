/**
 * The client's byte-faithful HTTP client for the local service: replays a tunnelled request
 * against 127.0.0.1:PORT (or any http:/https: origin) and streams the answer back through callback
 * bodies. Nothing is decoded and nothing is added but the framing lines (`Connection: keep-alive`,
 * `Transfer-Encoding: chunked`, `Content-Length: 0` for a bodiless POST/PUT) of HTTP/1.1, or the
 * pseudo-headers of HTTP/2.
 *
 * HTTP/1.1 to http: origins goes through our own keep-alive pool on Deno.connect: the head written in
 * one buffer by us, the answer parsed by llhttp (Deno's node:_http_common HTTPParser) — local_h1_lean.ts;
 * measured 15–25 µs CPU per request against 33–41 for node:http (scripts/bench_local_http.ts), which
 * https: origins still use (Deno.connectTls refuses a self-signed CA used as a leaf). h2c (HTTP/2 with
 * prior knowledge, gRPC) goes through one node:http2 session per origin (local_h2c.ts).
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
import { closeLocalPools } from "./local_h1_conn.ts";
import { h1HeaderArray } from "./local_h1_head.ts";
import { sendH1Lean } from "./local_h1_lean.ts";
import { localFailure, refuseLater } from "./local_failure.ts";

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
  if (req.protocol === "h2c") return h2c.send(origin, req, handler, opts);
  if (origin.protocol === "https:") return h1Node.send(origin, req, handler, opts);
  return sendH1Lean(origin, req, handler, opts, h1HeaderArray(req));
}

/** Closes the pooled local connections (HTTP/1.1 keep-alive sockets, h2c sessions): at shutdown, and between tests. */
export function closeLocalConnections(): void {
  closeLocalPools();
  h1Node.module?.closeH1Agents();
  h2c.module?.closeH2cSessions();
}

type Sender = (
  origin: URL,
  req: LocalRequest,
  handler: LocalResponseHandler,
  opts: LocalHttpOptions,
) => LocalExchange;

/**
 * A sender from a module loaded on its first request: node:http/https (https: origins) and
 * node:http2 (h2c) cost the idle client ~4 MB RSS that a client forwarding to http: never needs
 * (issue 13). The first such request waits for the import; the exchange can be aborted meanwhile.
 */
function lazySender<M>(load: () => Promise<M>, pick: (m: M) => Sender): { send: Sender; module?: M } {
  let loading: Promise<M> | undefined;
  const lazy: { send: Sender; module?: M } = {
    send(origin, req, handler, opts) {
      if (lazy.module !== undefined) return pick(lazy.module)(origin, req, handler, opts);
      let inner: LocalExchange | undefined;
      let aborted: { reason?: Error } | undefined;
      (loading ??= load()).then((m) => {
        lazy.module = m;
        if (aborted !== undefined) {
          req.body?.cancel(aborted.reason ?? new Error("local request aborted"));
          return;
        }
        inner = pick(m)(origin, req, handler, opts);
      }, (e) => {
        if (aborted === undefined) refuseLater(localFailure(origin, e as Error), handler, req.body);
      });
      return {
        abort(reason?: Error) {
          if (inner !== undefined) inner.abort(reason);
          else aborted ??= { reason };
        },
      };
    },
  };
  return lazy;
}

const h1Node = lazySender(() => import("./local_h1.ts"), (m) => m.sendH1Node);
const h2c = lazySender(() => import("./local_h2c.ts"), (m) => m.sendH2c);
