/**
 * A stand-in for the HTTPS front's ALPN routing while that front is rewritten: a TLS listener
 * (certificate per SNI name, as the front) that hands every socket negotiating "hopgate/1" to
 * `onTunnelSocket` and closes anything else. Once the front calls onTunnelSocket itself, server.ts
 * drops this listener and passes the same hook to startHttpsFront.
 */
import tls from "node:tls";
import { TUNNEL_ALPN } from "../dtls/tcp_frame.ts";
import type { ListenAddress } from "../config/values.ts";

export interface TunnelTlsListenerOptions {
  listen: ListenAddress;
  defaultCert: { cert: string; key: string };
  sni(servername: string): Promise<tls.SecureContext>;
  onTunnelSocket(socket: tls.TLSSocket): void;
}

export interface TunnelTlsListener {
  addr: { hostname: string; port: number };
  /** Stops listening and cuts the open carriers (their sessions are closed before this). */
  close(): Promise<void>;
}

/** Starts the listener; rejects when the port cannot be bound. */
export function startTunnelTlsListener(o: TunnelTlsListenerOptions): Promise<TunnelTlsListener> {
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({
    ...o.defaultCert,
    ALPNProtocols: [TUNNEL_ALPN],
    SNICallback: (name, done) => {
      o.sni(name).then((ctx) => done(null, ctx), (e) => done(e as Error));
    },
  }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    if (socket.alpnProtocol === TUNNEL_ALPN) o.onTunnelSocket(socket);
    else socket.destroy();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.listen.port, o.listen.hostname, () => {
      server.off("error", reject);
      const a = server.address() as { address: string; port: number };
      resolve({
        addr: { hostname: a.address, port: a.port },
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
