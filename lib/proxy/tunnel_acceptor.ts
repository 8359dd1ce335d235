/**
 * Server side of a new tunnel: a DTLS session (already authenticated by its PSK) becomes a
 * transport connection, the client's HELLO is answered, and the session joins the registry.
 */
import type tls from "node:tls";
import type { DatagramSession } from "../dtls/session.ts";
import { acceptTcp } from "../dtls/tcp_server.ts";
import type { Logger } from "../log/logger.ts";
import { Connection, type ConnectionOptions } from "../transport/connection.ts";
import { acceptControl } from "./control.ts";
import type { SessionRegistry } from "./registry.ts";

export interface AcceptorOptions {
  registry: SessionRegistry;
  isRegistered(domain: string): boolean;
  /** The URL the client's domain is served at, announced in WELCOME. */
  publicUrl(domain: string): string;
  logger: Logger;
  connection?: Omit<ConnectionOptions, "role" | "logger">;
  /** Called once per accepted session. */
  onAccepted?(sessionId: string, domain: string): void;
}

/** Turns an authenticated DTLS session into a registered tunnel session; never throws. */
export async function acceptTunnel(session: DatagramSession, options: AcceptorOptions): Promise<void> {
  const domain = session.identity;
  const remote = `${session.remoteAddress.hostname}:${session.remoteAddress.port}`;
  const log = options.logger.child({ component: "tunnel", domain, session: session.id, remote });
  const connection = new Connection(session, { role: "server", logger: log, ...options.connection });
  try {
    const result = await acceptControl(
      connection,
      () =>
        options.isRegistered(domain)
          ? { accept: true, sessionId: session.id, domain, publicUrl: options.publicUrl(domain) }
          : { accept: false, code: "unknown_domain", message: `${domain} is not registered on this server` },
      // The PING deadlines and the registry's probe pauses must run on the same clock.
      { clock: options.registry.clock },
    );
    if (result.kind === "rejected") {
      log.warn({ code: result.code }, "tunnel rejected");
      await connection.close(0, result.message);
      return;
    }
    options.registry.add({
      id: session.id,
      domain,
      remoteAddress: remote,
      connectedAt: new Date(),
      requestsServed: 0,
      services: result.hello.services,
      connection,
      control: result.control,
      carrier: (session as { carrier?: "tcp" }).carrier ?? "udp",
    });
    options.registry.probeOthers(session.id);
    options.onAccepted?.(session.id, domain);
    log.info(
      { services: result.hello.services, client_version: result.hello.clientVersion },
      "tunnel session opened",
    );
    result.control.peerGoodbye.then((reason) => {
      if (reason !== null) {
        log.info({ reason }, "client is leaving");
        options.registry.remove(session.id);
      }
    });
    connection.closed.then((info) =>
      log.info({ kind: info.kind, reason: info.reason }, "tunnel session closed")
    );
  } catch (e) {
    log.warn({ err: (e as Error).message }, "tunnel handshake failed");
    connection.abort(0, "handshake failed");
  }
}

export interface TcpAcceptorOptions extends AcceptorOptions {
  /** The PSK for an identity (the domain), or null: the same lookup as the DTLS server's. */
  lookupPsk(identity: string): Promise<Uint8Array | null>;
}

/**
 * The HTTPS front's hook for sockets that negotiated ALPN "hopgate/1": the TCP carrier's PSK
 * proof, then the same tunnel as over DTLS; never throws.
 */
export async function acceptTcpTunnel(
  socket: tls.TLSSocket,
  options: TcpAcceptorOptions,
  remote?: { addr: string; port: number },
): Promise<void> {
  // Bounded like the DTLS server's handshakes: sockets that never authenticate cannot pile up.
  if (pendingTcpAuth >= MAX_PENDING_TCP_AUTH) {
    socket.destroy();
    return;
  }
  pendingTcpAuth++;
  let session: DatagramSession | null = null;
  try {
    session = await acceptTcp(socket, {
      lookupPsk: options.lookupPsk,
      logger: options.logger,
      remote: remote && { hostname: remote.addr, port: remote.port },
    });
  } catch (e) {
    options.logger.warn({ component: "tunnel", err: (e as Error).message }, "tcp carrier failed");
    socket.destroy();
  } finally {
    pendingTcpAuth--;
  }
  if (session !== null) await acceptTunnel(session, options);
}

/** TCP carriers between TLS handshake and PSK proof, at most (the front bounds TLS handshakes themselves). */
const MAX_PENDING_TCP_AUTH = 1024;
let pendingTcpAuth = 0;
