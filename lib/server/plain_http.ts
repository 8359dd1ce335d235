/** The plain HTTP listener's handler when TLS is on: ACME challenges, redirects, peer-forwarded requests. */
import { type FrontHandler } from "../proxy/front.ts";
import { serveWeb } from "../proxy/web_bridge.ts";
import { PEER_HEADER, type PeerForwarding } from "../proxy/peer_forward.ts";
import { headerValue } from "../proxy/headers.ts";
import { hostOf } from "../proxy/gateway.ts";
import { errorResponse } from "../pages/mod.ts";
import { origin } from "./public_origin.ts";

/**
 * The plain HTTP listener when TLS is on: ACME's HTTP-01 path answers pending challenges, requests for
 * hosts this server serves go to HTTPS, anything else gets the 404 page.
 */
export function redirectToHttps(
  httpsPort: () => number,
  isKnownHost: (host: string) => boolean,
  challenge?: (path: string) => Promise<string | undefined>,
): FrontHandler {
  const app = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    if (url.pathname.startsWith("/.well-known/acme-challenge/")) {
      const keyAuthorization = await challenge?.(url.pathname);
      if (keyAuthorization !== undefined) {
        return new Response(keyAuthorization, { headers: { "content-type": "text/plain" } });
      }
      return errorResponse(
        404,
        "no_challenge",
        "No ACME challenge is pending here.",
        request,
        crypto.randomUUID(),
      );
    }
    const host = (request.headers.get("host") ?? url.hostname).replace(/:\d+$/, "").toLowerCase()
      .replace(/\.$/, "");
    // Only hosts this server serves: a redirect must not send a visitor wherever the Host header says.
    if (!isKnownHost(host)) {
      return errorResponse(
        404,
        "unknown_host",
        "This host is not served by this HopGate server.",
        request,
        crypto.randomUUID(),
      );
    }
    return new Response(null, {
      status: 308,
      headers: { location: `${origin("https", host, httpsPort())}${url.pathname}${url.search}` },
    });
  };
  return (req, res) => void serveWeb(req, res, app);
}

/**
 * The plain listener with TLS on: requests another server of the cluster forwarded (a valid
 * X-HopGate-Peer marker) go to the gateway; everything else to `other` (the redirect).
 */
export function peerOr(
  peers: PeerForwarding | undefined,
  gateway: FrontHandler,
  other: FrontHandler,
): FrontHandler {
  if (!peers) return other;
  return (req, res) => {
    const marker = headerValue(req.headers, PEER_HEADER);
    const ok = marker !== undefined &&
      peers.auth.verify(marker, hostOf(req.authority), req.method, req.target);
    return ok ? gateway(req, res) : other(req, res);
  };
}
