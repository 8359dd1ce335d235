/**
 * Forwarding between servers that share a database: a request for a domain this server holds no
 * session for goes, raw, to a live server that holds one (found in the cluster's sessions table),
 * instead of a 502. The hop is HTTP/1.1 on the peer's plain listener through the byte-faithful local
 * client, and every forwarded request carries X-HopGate-Peer: an HMAC (under a key derived from the
 * shared server secret) over the sender, the time and the request line, which the receiving server
 * checks before it routes the request (and never forwards it again). The marker is stripped before the
 * request enters a tunnel.
 */
import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";
import { type HeaderLine, pipeBody } from "../protocol/body.ts";
import type { FrontRequest, FrontResponse } from "./front_types.ts";
import { dropHopByHop, headerValue } from "./headers.ts";
import { sendLocal } from "./local_http.ts";

/** The header that marks (and authenticates) a request forwarded by another server. */
export const PEER_HEADER = "x-hopgate-peer";
/** How far a marker's time may be from this server's clock. */
const MAX_SKEW_MS = 30_000;

export interface PeerAuth {
  /** The header value for a request this server forwards. */
  sign(domain: string, method: string, target: string, now?: number): string;
  /** Whether a marker is valid for this request (right key, fresh, same request line). */
  verify(value: string, domain: string, method: string, target: string, now?: number): boolean;
}

/** Signs and checks markers with a key derived from the cluster's shared server secret. */
export function peerAuth(secret: Uint8Array, serverId: string): PeerAuth {
  const key = createHmac("sha256", secret).update("hopgate peer forwarding v1").digest();
  const mac = (id: string, ts: string, domain: string, method: string, target: string) =>
    createHmac("sha256", key).update(`${id}\n${ts}\n${domain}\n${method}\n${target}`).digest();
  return {
    sign(domain, method, target, now = Date.now()) {
      const ts = String(now);
      return `v1;${serverId};${ts};${mac(serverId, ts, domain, method, target).toString("hex")}`;
    },
    verify(value, domain, method, target, now = Date.now()) {
      const [v, id, ts, hex] = value.split(";");
      if (v !== "v1" || !id || !/^\d{1,15}$/.test(ts ?? "") || !/^[0-9a-f]{64}$/.test(hex ?? "")) {
        return false;
      }
      if (id === serverId || Math.abs(now - Number(ts)) > MAX_SKEW_MS) return false;
      return timingSafeEqual(mac(id, ts, domain, method, target), Buffer.from(hex, "hex"));
    },
  };
}

/** What the gateway needs to forward: where a domain's session is, and the marker. */
export interface PeerForwarding {
  auth: PeerAuth;
  /** The plain HTTP listener (http://host:port) of a live server holding a session for `domain`. */
  findPeer(domain: string): Promise<URL | undefined>;
}

/**
 * Forwards `req` to `peer` and writes its answer to `res`; resolves with the status (0 when the peer
 * could not be reached: nothing was written, the caller answers).
 */
export function forwardToPeer(
  req: FrontRequest,
  res: FrontResponse,
  peer: URL,
  domain: string,
  auth: PeerAuth,
): Promise<{ status: number; bytesOut: number }> {
  const headers: HeaderLine[] = dropHopByHop(req.headers).filter(([n]) => n.toLowerCase() !== PEER_HEADER);
  if (headerValue(headers, "host") === undefined) headers.unshift(["Host", req.authority]);
  const prior = headers.filter(([n]) => n.toLowerCase() === "x-forwarded-for");
  const forwardedFor = [...prior.map(([, v]) => v), req.remoteAddr].join(", ");
  const lines = headers.filter(([n]) => n.toLowerCase() !== "x-forwarded-for");
  lines.push(["X-Forwarded-For", forwardedFor], [PEER_HEADER, auth.sign(domain, req.method, req.target)]);
  const length = headerValue(lines, "content-length");
  return new Promise((resolve) => {
    let bytesOut = 0;
    const call = sendLocal(peer, {
      method: req.method,
      target: req.target,
      headers: lines,
      body: req.body,
      contentLength: length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined,
      protocol: "h1",
      upgrade: req.upgrade && req.body === null,
    }, {
      head(status, statusText, responseHeaders) {
        res.head(status, statusText, dropHopByHop(responseHeaders));
        return {
          write(chunk) {
            bytesOut += chunk.length;
            return res.body.write(chunk);
          },
          onDrain: (cb) => res.body.onDrain(cb),
          end(trailers) {
            res.body.end(trailers);
            resolve({ status, bytesOut });
          },
          abort(reason) {
            res.body.abort(reason);
            resolve({ status, bytesOut });
          },
        };
      },
      upgraded(statusText, responseHeaders, raw) {
        const browser = res.switchProtocols(statusText, dropHopByHop(responseHeaders, UPGRADE_KEEP));
        Promise.allSettled([pipeBody(browser.source, raw.sink), pipeBody(raw.source, browser.sink)])
          .then(() => resolve({ status: 101, bytesOut }));
      },
      error() {
        resolve({ status: 0, bytesOut: 0 });
      },
    });
    req.onAbort(() => call.abort(new Error("the browser went away")));
  });
}

const UPGRADE_KEEP: ReadonlySet<string> = new Set(["upgrade", "connection"]);
