/**
 * Test support for the TCP carrier: a throw-away CA and server certificate (openssl), a TLS
 * listener on 127.0.0.1 that routes ALPN "hopgate/1" to a handler as the HTTPS front does, and a
 * transport connection pair over the carrier.
 */
import tls from "node:tls";
import { acceptTcp } from "../../lib/dtls/tcp_server.ts";
import { connectTcp } from "../../lib/dtls/tcp_client.ts";
import { TUNNEL_ALPN } from "../../lib/dtls/tcp_frame.ts";
import type { DatagramSession } from "../../lib/dtls/session.ts";
import { Connection, type ConnectionOptions } from "../../lib/transport/connection.ts";
import { DTLS_IDENTITY, DTLS_PSK, type SessionPair, sessionPair } from "./transport_dtls.ts";

export interface TestPki {
  caPem: string;
  certPem: string;
  keyPem: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
}

/** A CA and a certificate for `names` (DNS) and 127.0.0.1 signed by it (made in a temp dir, removed after). */
export async function makePki(names: string[] = ["localhost"]): Promise<TestPki> {
  const dir = await Deno.makeTempDir({ prefix: "hopgate-pki-" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "2",
    "-subj",
    "/CN=Test CA",
  ], dir);
  await openssl(["req", ...ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", `/CN=${names[0]}`], dir);
  const san = [...names.map((n) => `DNS:${n}`), "IP:127.0.0.1"].join(",");
  await Deno.writeTextFile(`${dir}/ext.cnf`, `subjectAltName=${san}\n`);
  await openssl([
    "x509",
    "-req",
    "-in",
    "srv.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "srv.crt",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
  ], dir);
  try {
    return {
      caPem: await Deno.readTextFile(`${dir}/ca.crt`),
      certPem: await Deno.readTextFile(`${dir}/srv.crt`),
      keyPem: await Deno.readTextFile(`${dir}/srv.key`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

export interface AlpnListener {
  port: number;
  close(): Promise<void>;
}

/** A TLS listener routing ALPN "hopgate/1" sockets to `onTunnel` (others are closed). */
export function alpnListener(pki: TestPki, onTunnel: (s: tls.TLSSocket) => void): Promise<AlpnListener> {
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({
    cert: pki.certPem,
    key: pki.keyPem,
    ALPNProtocols: ["h2", "http/1.1", TUNNEL_ALPN],
  }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    if (socket.alpnProtocol === TUNNEL_ALPN) onTunnel(socket);
    else socket.destroy();
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      resolve({
        port: (server.address() as { port: number }).port,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

export type TcpPair = SessionPair;

/** A transport connection pair over the TCP carrier on loopback, as dtlsPair is over DTLS. */
export async function tcpPair(
  pki: TestPki,
  options: Partial<ConnectionOptions> = {},
  wrap: (s: DatagramSession) => DatagramSession = (s) => s,
): Promise<TcpPair> {
  let resolveServer!: (v: [Connection, DatagramSession]) => void;
  const serverSide = new Promise<[Connection, DatagramSession]>((r) => (resolveServer = r));
  const listener = await alpnListener(pki, async (socket) => {
    const s = await acceptTcp(socket, {
      lookupPsk: (id) => Promise.resolve(id === DTLS_IDENTITY ? DTLS_PSK : null),
    });
    if (s) resolveServer([new Connection(wrap(s), { ...options, role: "server" }), s]);
  });
  const clientSession = await connectTcp({
    hostname: "127.0.0.1",
    port: listener.port,
    serverName: "localhost",
    caPem: pki.caPem,
    identity: DTLS_IDENTITY,
    psk: DTLS_PSK,
  });
  const client = new Connection(wrap(clientSession), { ...options, role: "client" });
  const [server, serverSession] = await serverSide;
  return sessionPair(client, server, clientSession, serverSession, () => listener.close());
}
