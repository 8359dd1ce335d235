/** Composition step: the tunnel endpoints, the DTLS server and the TCP carrier (issue 12). */
import type tls from "node:tls";
import type { ServerConfig } from "../config/server_config.ts";
import type { Logger } from "../log/logger.ts";
import type { DomainStore } from "../../db/domains.ts";
import { type DtlsServer, startDtlsServer } from "../dtls/server.ts";
import { pskFromApiKey } from "../dtls/psk.ts";
import type { SessionRegistry } from "../proxy/registry.ts";
import { acceptTcpTunnel, acceptTunnel } from "../proxy/tunnel_acceptor.ts";
import { startTunnelTlsListener, type TunnelTlsListener } from "../proxy/tunnel_tls_listener.ts";
import type { CertificateStore } from "../tls/certificate_store.ts";
import type { Front } from "../proxy/front.ts";
import type { PublicOrigin } from "./public_origin.ts";

export interface TunnelOptions {
  store: DomainStore;
  domains: Set<string>;
  registry: SessionRegistry;
  publicOrigin: PublicOrigin;
  logger: Logger;
}

/** The DTLS server, and the hook that takes TCP-carrier sockets from a TLS listener. */
export interface TunnelEndpoints {
  dtls: DtlsServer;
  /** The TCP carrier's entry: sockets that negotiated ALPN "hopgate/1". */
  onTunnelSocket(socket: tls.TLSSocket, remote?: { addr: string; port: number }): Promise<void>;
}

/** Starts the DTLS server; tunnels of both carriers authenticate with the domain's client key. */
export async function startTunnelEndpoints(config: ServerConfig, o: TunnelOptions): Promise<TunnelEndpoints> {
  const { store, domains, registry, logger } = o;
  const publicUrl = (domain: string) => o.publicOrigin.url(domain);
  const lookupPsk = async (identity: string) => {
    if (!domains.has(identity)) return null;
    const key = await store.clientKey(identity);
    return key ? pskFromApiKey(key) : null;
  };
  const dtls = await startDtlsServer({
    hostname: config.dtlsListen.hostname,
    port: config.dtlsListen.port,
    logger,
    lookupPsk,
    onSession: (session) =>
      acceptTunnel(session, { registry, isRegistered: (d) => domains.has(d), publicUrl, logger }),
  });
  const onTunnelSocket = (socket: tls.TLSSocket, remote?: { addr: string; port: number }) =>
    acceptTcpTunnel(
      socket,
      { registry, isRegistered: (d) => domains.has(d), publicUrl, logger, lookupPsk },
      remote,
    );
  return { dtls, onTunnelSocket };
}

/**
 * Clients dial the TCP carrier on the DTLS port number: the HTTPS front takes it (ALPN "hopgate/1")
 * when both share a port, as the defaults do; otherwise a TLS listener of its own (undefined when
 * that port cannot be bound: a warning, the UDP carrier still serves).
 */
export async function startTcpCarrier(
  config: ServerConfig,
  tunnels: TunnelEndpoints,
  https: Front,
  certs: CertificateStore,
  logger: Logger,
): Promise<TunnelTlsListener | undefined> {
  if (tunnels.dtls.addr.port === https.addr.port) return undefined;
  return await startTunnelTlsListener({
    listen: { hostname: config.dtlsListen.hostname, port: tunnels.dtls.addr.port },
    defaultCert: certs.defaultPair(),
    sni: (name) => certs.contextFor(name),
    onTunnelSocket: tunnels.onTunnelSocket,
  }).catch((e) => {
    logger.child({ component: "server" }).warn(
      { err: (e as Error).message },
      "TCP carrier listener not started",
    );
    return undefined;
  });
}
