/**
 * The client side of the TCP carrier: TLS to the server's HTTPS port with ALPN "hopgate/1", the
 * server's certificate verified (system roots, or the given CA), then the PSK proof exchange of
 * tcp_auth.ts. Resolves with a DatagramSession the transport runs over, like connectDtls.
 */
import tls from "node:tls";
import { isIP } from "node:net";
import type { Buffer } from "node:buffer";
import { CarrierCertificateError, DtlsAuthError, DtlsHandshakeError, DtlsTimeoutError } from "./errors.ts";
import type { DatagramSession } from "./session.ts";
import { carrierProof, channelBinding, proofMatches } from "./tcp_auth.ts";
import {
  decodeReject,
  encodeAuth,
  encodeFrame,
  type Frame,
  FrameDecoder,
  FrameType,
  TUNNEL_ALPN,
} from "./tcp_frame.ts";
import { TcpSession } from "./tcp_session.ts";

export interface ConnectTcpOptions {
  hostname: string;
  port: number;
  /** Name the certificate must carry; defaults to `hostname` (required in practice for IP literals). */
  serverName?: string;
  /** PEM of extra trusted CAs (a private CA or a dev self-signed one); system roots otherwise. */
  caPem?: string;
  identity: string;
  psk: Uint8Array;
  /** For the TLS connect and the proof exchange together (default 5000 ms). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Node's verification failures (tls.TLSSocket authorizationError codes and handshake error codes). */
const CERT_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME|HOSTNAME|UnknownIssuer|certificate/i;

let nextId = 1;

/** Opens a TCP carrier session; rejects with DtlsAuthError, CarrierCertificateError, DtlsTimeoutError or DtlsHandshakeError. */
export function connectTcp(o: ConnectTcpOptions): Promise<DatagramSession> {
  const where = `${o.hostname}:${o.port}`;
  const servername = o.serverName ?? (isIP(o.hostname) === 0 ? o.hostname : undefined);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: o.hostname,
      port: o.port,
      servername,
      ca: o.caPem !== undefined ? [...tls.rootCertificates, o.caPem] : undefined,
      ALPNProtocols: [TUNNEL_ALPN],
      // Names are checked even for IP literals when a server name is given.
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(servername ?? o.hostname, cert),
    });
    socket.setNoDelay(true);
    // Errors after the first (or after the session took over) must not become uncaught exceptions.
    socket.on("error", () => {});
    const decoder = new FrameDecoder();
    let settled = false;
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      reject(e);
    };
    const onAbort = () => fail(new DtlsHandshakeError(`TCP carrier to ${where}: aborted`));
    o.signal?.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(
      () => fail(new DtlsTimeoutError(`TLS carrier handshake with ${where} timed out`, 1)),
      o.timeoutMs ?? 5000,
    );
    const onError = (e: Error & { code?: string }) => {
      const text = `${e.code ?? ""} ${e.message}`;
      if (CERT_ERROR.test(text)) {
        fail(new CarrierCertificateError(`the certificate of ${where} is not trusted: ${e.message}`, text));
      } else fail(new DtlsHandshakeError(`TCP carrier to ${where} failed: ${e.message}`, { cause: e }));
    };
    const onClose = () => fail(new DtlsHandshakeError(`TCP carrier to ${where}: connection closed`));
    socket.once("error", onError);
    socket.once("close", onClose);
    socket.once("secureConnect", () => {
      if (!socket.authorized) {
        const why = String(socket.authorizationError ?? "unknown reason");
        fail(new CarrierCertificateError(`the certificate of ${where} is not trusted: ${why}`, why));
        return;
      }
      if (socket.alpnProtocol !== TUNNEL_ALPN) {
        fail(
          new DtlsHandshakeError(
            `${where} does not offer the HopGate tunnel over TLS (ALPN ${TUNNEL_ALPN}); is it a HopGate server, and a recent one?`,
          ),
        );
        return;
      }
      const binding = channelBinding(socket, "client");
      if (binding === null) {
        fail(
          new DtlsHandshakeError("this runtime exposes no TLS Finished messages to bind the PSK proof to"),
        );
        return;
      }
      socket.write(
        encodeFrame(
          FrameType.auth,
          encodeAuth({ identity: o.identity, proof: carrierProof(o.psk, "client", o.identity, binding) }),
        ),
      );
      const onData = (chunk: Buffer) => {
        let frames: Frame[];
        try {
          frames = decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        } catch (e) {
          fail(new DtlsHandshakeError(`TCP carrier to ${where}: ${(e as Error).message}`));
          return;
        }
        if (frames.length === 0) return;
        const [answer, ...rest] = frames;
        socket.off("data", onData);
        if (answer.type === FrameType.reject) {
          const r = decodeReject(answer.payload);
          fail(
            r.code === "key"
              ? new DtlsAuthError(
                `server rejected the PSK for identity "${o.identity}": ${r.message}`,
                "tcp_reject",
              )
              : new DtlsHandshakeError(`server refused the TCP carrier (${r.code}): ${r.message}`),
          );
          return;
        }
        const expected = carrierProof(o.psk, "server", o.identity, binding);
        if (answer.type !== FrameType.accept || !proofMatches(expected, answer.payload)) {
          fail(
            new DtlsAuthError(`server's proof did not verify for identity "${o.identity}"`, "decrypt_error"),
          );
          return;
        }
        settled = true;
        clearTimeout(timer);
        o.signal?.removeEventListener("abort", onAbort);
        socket.off("error", onError);
        socket.off("close", onClose);
        resolve(
          new TcpSession(socket, {
            id: `t${(nextId++).toString(36)}`,
            identity: o.identity,
            remoteAddress: { hostname: o.hostname, port: o.port },
            early: rest,
            decoder,
          }),
        );
      };
      socket.on("data", onData);
    });
  });
}
