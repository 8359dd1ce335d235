/**
 * HTTP/1.1 to the local service through node:http with a keep-alive Agent (one per scheme; it pools
 * per host:port). Under Deno node:http writes a raw header array as given (order, case, duplicates)
 * and adds only `Connection: keep-alive` (none when the request has a Connection line) and the body
 * framing; responses come as rawHeaders/rawTrailers, undecoded. tests/local_http_wire.test.ts pins
 * this down byte for byte. A kept-alive socket the service closed as it was reused is retried by
 * node:http itself.
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
  httpAgent?.destroy();
  httpsAgent?.destroy();
  httpAgent = httpsAgent = undefined;
}

const FRAMING = new Set(["content-length", "transfer-encoding"]);
/** Methods node sends without framing when they carry no body. */
const BODILESS_BY_DEFAULT = new Set(["GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"]);

/**
 * The header array written on the wire: the caller's lines minus framing, then the framing this
 * request uses (Content-Length at the browser's position when it sent one, else chunked when there
 * is a body), and `Connection: upgrade` for an upgrade request without a Connection line.
 */
export function h1HeaderArray(req: LocalRequest): string[] {
  const out: string[] = [];
  let lengthName: string | undefined;
  let hasConnection = false;
  for (const [name, value] of req.headers) {
    const lower = name.toLowerCase();
    if (FRAMING.has(lower)) {
      if (lower === "content-length" && req.contentLength !== undefined && lengthName === undefined) {
        lengthName = name;
        out.push(name, String(req.contentLength));
      }
      continue;
    }
    if (lower === "connection") hasConnection = true;
    out.push(name, value);
  }
  if (req.contentLength !== undefined) {
    if (lengthName === undefined) out.push("Content-Length", String(req.contentLength));
  } else if (req.body) {
    // Explicit, so node chunks the body whatever the method (it sends GET bodies unframed otherwise).
    out.push("Transfer-Encoding", "chunked");
  } else if (!BODILESS_BY_DEFAULT.has(req.method.toUpperCase())) {
    // node renders a raw header array at once and would frame a bodiless POST as an empty chunked
    // body; RFC 9110 §8.6 has user agents send Content-Length: 0 there, as browsers do.
    out.push("Content-Length", "0");
  }
  if (req.upgrade && !hasConnection) out.push("Connection", "Upgrade");
  return out;
}

/** Sends one HTTP/1.1 request; see sendLocal. */
export function sendH1(
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
    r.destroy(e);
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
        r.destroy();
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
