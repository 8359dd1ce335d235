/**
 * HTTP/1.1 to the local service. http: origins take the lean path (local_h1_lean.ts: the head
 * serialized by us, pooled Deno connections, llhttp for the answer); https: origins go through
 * node:http with a keep-alive Agent (one per scheme; it pools per host:port), whose TLS accepts the
 * self-signed dev certificates Deno.connectTls refuses. Both write the header array of
 * `h1HeaderArray` as given (order, case, duplicates) and add only `Connection: keep-alive` (none when
 * the request has a Connection line) and the body framing; responses come raw, undecoded.
 * tests/local_http_wire.test.ts pins this down byte for byte. A kept-alive connection the service
 * closed as it was reused is retried (bodiless requests on the lean path; node:http itself here).
 */
import http from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import type { ByteSink } from "../protocol/body.ts";
import { localFailure, refuseLater, unsendable } from "./local_failure.ts";
import type {
  LocalExchange,
  LocalHttpOptions,
  LocalRequest,
  LocalResponseHandler,
} from "./local_http_types.ts";
import { headerPairs, pipeToSink, pumpBody, socketDuplex } from "./local_node_body.ts";
import { closeLocalPools } from "./local_h1_conn.ts";
import { sendH1Lean } from "./local_h1_lean.ts";
import { h1HeaderArray } from "./local_h1_head.ts";

export { h1HeaderArray };

/** A response head up to this size passes (200 Set-Cookie lines of 1 KiB; node's default is 16 KiB). */
export const MAX_RESPONSE_HEAD = 512 * 1024;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

// Idle sockets are kept per origin; lifo reuses the warmest and lets the others time out.
const agentOptions: http.AgentOptions = {
  keepAlive: true,
  maxSockets: 256,
  maxFreeSockets: 64,
  scheduling: "lifo",
};
let httpAgent: http.Agent | undefined;
let httpsAgent: https.Agent | undefined;

function agentFor(origin: URL): http.Agent {
  if (origin.protocol === "https:") return httpsAgent ??= new https.Agent(agentOptions);
  return httpAgent ??= new http.Agent(agentOptions);
}

/** Closes the kept-alive connections (shutdown, tests); new requests open fresh ones. */
export function closeH1Agents(): void {
  closeLocalPools();
  httpAgent?.destroy();
  httpsAgent?.destroy();
  httpAgent = httpsAgent = undefined;
}

/**
 * Sends one HTTP/1.1 request; see sendLocal. To an http: origin it goes the lean way (local_h1_lean.ts: our head
 * bytes on pooled Deno connections, llhttp for the answer), chosen by measurement over node:http
 * (scripts/bench_local_http.ts), which stays as `sendH1Node` for https: origins (see local_h1_conn.ts) and for comparison.
 */
export function sendH1(
  origin: URL,
  req: LocalRequest,
  handler: LocalResponseHandler,
  opts: LocalHttpOptions,
): LocalExchange {
  if (origin.protocol === "https:") return sendH1Node(origin, req, handler, opts);
  return sendH1Lean(origin, req, handler, opts, h1HeaderArray(req));
}

/** Sends one HTTP/1.1 request through node:http with a keep-alive Agent (the former path). */
export function sendH1Node(
  origin: URL,
  req: LocalRequest,
  handler: LocalResponseHandler,
  opts: LocalHttpOptions,
): LocalExchange {
  let answered = false;
  let done = false;
  let sink: ByteSink | null = null;
  let bodyOpen = req.body !== null;

  /** Ends the exchange with a failure: the handler hears it once (an error before the head, an aborted sink after). */
  const fail = (e: Error, silent = false) => {
    if (done) return;
    done = true;
    destroyRequest(r, e);
    if (bodyOpen) {
      bodyOpen = false;
      req.body!.cancel(e);
    }
    if (sink) sink.abort(e);
    else if (!silent && !answered) handler.error(localFailure(origin, e));
  };

  let r: http.ClientRequest;
  try {
    r = (origin.protocol === "https:" ? https : http).request({
      protocol: origin.protocol,
      hostname: origin.hostname.replace(/^\[|\]$/g, ""),
      port: origin.port || (origin.protocol === "https:" ? 443 : 80),
      method: req.method,
      path: req.target,
      headers: h1HeaderArray(req) as unknown as http.OutgoingHttpHeaders,
      setHost: false,
      agent: agentFor(origin),
      maxHeaderSize: MAX_RESPONSE_HEAD,
      ca: opts.ca,
    });
  } catch (e) {
    return refuseLater(unsendable(origin, e as Error), handler, req.body);
  }
  watchConnect(r, opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
  r.on("error", (e: Error) => fail(e));
  r.on("response", (res) => {
    if (done) return void res.destroy();
    answered = true;
    sink = handler.head(res.statusCode ?? 0, res.statusMessage ?? "", headerPairs(res.rawHeaders));
    pipeToSink(res, sink);
    res.once("end", () => {
      if (done) return;
      if (!res.complete) {
        return fail(new Error(`${origin.host} ended the response before its body was complete`));
      }
      done = true;
      sink!.end(res.rawTrailers.length ? headerPairs(res.rawTrailers) : null);
      // The answer is complete while the upload goes on (413…): the rest of the body is not wanted.
      if (bodyOpen) {
        bodyOpen = false;
        req.body!.cancel();
        destroyRequest(r);
      }
    });
    res.on("error", (e: Error) => fail(e));
    res.on("close", () => {
      if (!res.complete) fail(new Error(`${origin.host} closed the connection before the body was complete`));
    });
  });
  if (req.upgrade) {
    r.on("upgrade", (res, socket, head) => {
      if (done) return void socket.destroy();
      answered = done = true;
      handler.upgraded(res.statusMessage ?? "", headerPairs(res.rawHeaders), socketDuplex(socket, head));
    });
  }
  if (req.body) {
    pumpBody(req.body, r, {
      end(trailers) {
        bodyOpen = false;
        try {
          if (trailers && trailers.length > 0 && req.contentLength === undefined) r.addTrailers(trailers);
        } catch (e) {
          return fail(unsendable(origin, e as Error));
        }
        r.end();
      },
      error(e) {
        bodyOpen = false;
        fail(new Error(`the request body failed: ${e.message}`, { cause: e }));
      },
    });
    // A slow source must not hold the head back (a streaming upload waiting on the answer).
    if (!r.headersSent) r.flushHeaders();
  } else {
    r.end();
  }
  return { abort: (reason) => fail(reason ?? new Error("local request aborted"), true) };
}

/**
 * Ends a request and its connection. Deno 2.9's node:http neither closes a reused keep-alive socket
 * when its request is destroyed nor leaves it alone: closing the socket makes it re-send the request on
 * a new one (measured: the origin saw the aborted GET twice and kept the second). So the retry is
 * switched off and the socket closed first: the origin sees the request go, once.
 */
function destroyRequest(r: http.ClientRequest, e?: Error): void {
  const socket = r.socket;
  (r as { reusedSocket: boolean }).reusedSocket = false;
  socket?.destroy();
  r.destroy(e);
}

/** Fails the request with ETIMEDOUT when connecting (TCP, then TLS) takes longer than `ms`. */
function watchConnect(r: http.ClientRequest, ms: number): void {
  r.once("socket", (socket: Socket & { encrypted?: boolean }) => {
    if (!socket.connecting) return;
    const timer = setTimeout(() => {
      const e = Object.assign(new Error(`connecting took longer than ${ms} ms`), { code: "ETIMEDOUT" });
      r.destroy(e);
    }, ms);
    socket.once(socket.encrypted ? "secureConnect" : "connect", () => clearTimeout(timer));
    socket.once("close", () => clearTimeout(timer));
  });
}
