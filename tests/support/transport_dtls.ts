/** Test and benchmark support: a transport connection pair over real DTLS sessions on 127.0.0.1. */
import { connectDtls } from "../../lib/dtls/client.ts";
import { startDtlsServer } from "../../lib/dtls/server.ts";
import type { DatagramSession } from "../../lib/dtls/session.ts";
import { Connection, type ConnectionOptions } from "../../lib/transport/connection.ts";

export const DTLS_IDENTITY = "transport.example.com";
export const DTLS_PSK = Uint8Array.from({ length: 32 }, (_, i) => (i * 29 + 3) & 0xff);

/** A client and a server transport over real sessions of some carrier. */
export interface SessionPair {
  client: Connection;
  server: Connection;
  clientSession: DatagramSession;
  serverSession: DatagramSession;
  /** Closes both connections and the carrier's listener. */
  close(): Promise<void>;
}

export type DtlsPair = SessionPair;

/** The pair, closed by aborting both connections, then closing the carrier's listener. */
export function sessionPair(
  client: Connection,
  server: Connection,
  clientSession: DatagramSession,
  serverSession: DatagramSession,
  closeListener: () => Promise<void>,
): SessionPair {
  return {
    client,
    server,
    clientSession,
    serverSession,
    async close() {
      client.abort(0, "test over");
      server.abort(0, "test over");
      await Promise.all([client.closed, server.closed]);
      await closeListener();
    },
  };
}

/**
 * Connects a client and a server transport over DTLS on loopback. `wrap` may interpose on each
 * session (e.g. to drop datagrams) before the connection sees it.
 */
export async function dtlsPair(
  options: Partial<ConnectionOptions> = {},
  wrap: (s: DatagramSession) => DatagramSession = (s) => s,
): Promise<DtlsPair> {
  let resolveServer!: (c: Connection) => void;
  let serverSession!: DatagramSession;
  const serverConn = new Promise<Connection>((r) => (resolveServer = r));
  const dtls = await startDtlsServer({
    hostname: "127.0.0.1",
    port: 0,
    lookupPsk: (id) => Promise.resolve(id === DTLS_IDENTITY ? DTLS_PSK : null),
    onSession: (s) => {
      serverSession = s;
      resolveServer(new Connection(wrap(s), { ...options, role: "server" }));
    },
  });
  const clientSession = await connectDtls({
    hostname: "127.0.0.1",
    port: dtls.addr.port,
    identity: DTLS_IDENTITY,
    psk: DTLS_PSK,
  });
  const client = new Connection(wrap(clientSession), { ...options, role: "client" });
  const server = await serverConn;
  return sessionPair(client, server, clientSession, serverSession, () => dtls.close());
}
