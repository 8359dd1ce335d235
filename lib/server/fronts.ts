/** Composition step: the gateway and the public fronts (HTTPS and HTTP, or HTTP alone with TLS off). */
import type { ServerConfig } from "../config/server_config.ts";
import type { Logger } from "../log/logger.ts";
import { cidrContains, parseIp } from "../config/cidr.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { SessionRegistry } from "../proxy/registry.ts";
import { createGateway, type Gateway } from "../proxy/gateway.ts";
import { type Front, startHttpFront, startHttpsFront } from "../proxy/front.ts";
import type { PeerForwarding } from "../proxy/peer_forward.ts";
import type { PolicyBook } from "../proxy/policy_book.ts";
import type { TunnelTlsListener } from "../proxy/tunnel_tls_listener.ts";
import type { Certificates } from "./certificates.ts";
import type { OwnApp } from "./own_app.ts";
import type { PublicOrigin } from "./public_origin.ts";
import { startTcpCarrier, type TunnelEndpoints } from "./tunnels.ts";
import { peerOr, redirectToHttps } from "./plain_http.ts";

export interface GatewayParts {
  domains: Set<string>;
  ownApp: OwnApp;
  policies: PolicyBook;
  peers?: PeerForwarding;
  metrics: Metrics;
  registry: SessionRegistry;
  logger: Logger;
}

/** The gateway: routes by Host to the own app, a tunnel, another server of the cluster, or 404. */
export function createServerGateway(config: ServerConfig, o: GatewayParts): Gateway {
  const { domains, policies, metrics } = o;
  const trusted = config.trustedProxies;
  return createGateway({
    serverDomain: config.domain,
    // localhost and IP literals reach the admin API only where no public name is served (dev, tests).
    ownAddressHosts: config.tlsMode === "self-signed" || config.debug,
    ownApp: o.ownApp.fetch,
    isRegistered: (d) => domains.has(d),
    isTrustedProxy: trusted.length === 0 ? undefined : (address) => {
      const ip = parseIp(address);
      return ip !== null && trusted.some((c) => cidrContains(c, ip));
    },
    policy: (domain) => policies.get(domain),
    peers: o.peers,
    onPolicyDenied: (domain, reason) => metrics.observePolicyDenial(domain, reason),
    hsts: (domain) => config.tlsMode === "acme" && policies.get(domain)?.stored.hsts !== false,
    registry: o.registry,
    proxyTimeoutMs: config.proxyTimeoutMs,
    maxRequestsPerPeer: config.maxRequestsPerIp,
    logger: o.logger,
    onRequestDone: (r) => metrics.observeRequest(r),
  });
}

export interface FrontOptions {
  gateway: Gateway;
  certificates: Certificates;
  tunnels: TunnelEndpoints;
  domains: Set<string>;
  peers?: PeerForwarding;
  /** Its port is set here, once the public front listens. */
  publicOrigin: PublicOrigin;
  logger: Logger;
}

/** The listening fronts; `all` in start order (shutdown closes them together). */
export interface Fronts {
  all: Front[];
  http: Front;
  https?: Front;
  /** The TCP carrier's own listener, when the DTLS port is not the HTTPS port. */
  tunnelTls?: TunnelTlsListener;
}

/**
 * Starts the fronts. With TLS: HTTPS (with the TCP carrier's ALPN), the TCP carrier's listener if it
 * needs its own port, then plain HTTP (ACME challenges, redirects, peer-forwarded requests). Without
 * TLS: plain HTTP serving the gateway.
 */
export async function startFronts(config: ServerConfig, o: FrontOptions): Promise<Fronts> {
  const { gateway, logger } = o;
  const { certs, acme } = o.certificates;
  const limits = {
    maxConnectionsPerAddress: config.maxConnectionsPerIp,
    handshakeTimeoutMs: config.tlsHandshakeTimeoutMs,
    headTimeoutMs: config.headerTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
  };
  if (!certs) {
    const http = await startHttpFront({ listen: config.httpListen, handler: gateway.handle, limits, logger });
    o.publicOrigin.port = http.addr.port;
    return { all: [http], http };
  }
  const https = await startHttpsFront({
    listen: config.httpsListen,
    defaultCert: certs.defaultPair(),
    sni: (name) => certs.contextFor(name),
    handler: gateway.handle,
    onTunnelSocket: o.tunnels.onTunnelSocket,
    limits,
    logger,
  });
  o.publicOrigin.port = https.addr.port;
  const tunnelTls = await startTcpCarrier(config, o.tunnels, https, certs, logger);
  const http = await startHttpFront({
    listen: config.httpListen,
    handler: peerOr(
      o.peers,
      gateway.handle,
      redirectToHttps(
        () => o.publicOrigin.port,
        (h) => h === config.domain || o.domains.has(h),
        acme?.challengeResponse,
      ),
    ),
    limits,
    logger,
  });
  return { all: [https, http], http, https, tunnelTls };
}
