/**
 * The server side of the TCP carrier: a TLS socket the HTTPS front routed here by ALPN
 * "hopgate/1" must send AUTH (identity = domain, proof under its PSK bound to this TLS
 * connection) within the timeout; a wrong key or unknown identity gets REJECT "key", as a DTLS
 * handshake gets decrypt_error or unknown_psk_identity.
 */
import type tls from "node:tls";
import type { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import { type Logger, silentLogger } from "../log/logger.ts";
import type { DatagramSession } from "./session.ts";
import { carrierProof, channelBinding, proofMatches } from "./tcp_auth.ts";
import {
  decodeAuth,
  encodeFrame,
  encodeReject,
  type Frame,
  FrameDecoder,
  FrameType,
  PROOF_LENGTH,
  type RejectCode,
} from "./tcp_frame.ts";
import { TcpSession } from "./tcp_session.ts";

export interface AcceptTcpOptions {
  /** The PSK for an identity (the domain), or null when unknown: the DTLS server's lookup. */
  lookupPsk: (identity: string) => Promise<Uint8Array | null>;
  /** Time allowed for AUTH after the TLS handshake (default 10 000 ms). */
  timeoutMs?: number;
  logger?: Logger;
  /** The peer, when the socket cannot tell (a TLS socket over a stream the front accepted). */
  remote?: { hostname: string; port: number };
}

/** The largest AUTH frame: identity length, 255 bytes of identity, the proof. */
const MAX_AUTH = 1 + 255 + PROOF_LENGTH;

/** Authenticates a carrier socket; resolves the session, or null after refusing it (the socket is then closed). */
export function acceptTcp(socket: tls.TLSSocket, o: AcceptTcpOptions): Promise<DatagramSession | null> {
  const log = (o.logger ?? silentLogger).child({ component: "tcp-carrier" });
  const remote = o.remote ?? { hostname: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 };
  const decoder = new FrameDecoder(MAX_AUTH);
  return new Promise((resolve) => {
    let done = false;
    const finish = (session: DatagramSession | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("error", onGone);
      socket.off("close", onGone);
      resolve(session);
    };
    const refuse = (code: RejectCode, message: string) => {
      log.debug({ peer: `${remote.hostname}:${remote.port}`, code, message }, "tcp carrier refused");
      if (!socket.destroyed) {
        socket.end(encodeFrame(FrameType.reject, encodeReject(code, message)));
        setTimeout(() => socket.destroy(), 1000).unref?.();
      }
      finish(null);
    };
    const onGone = () => finish(null);
    const timer = setTimeout(() => refuse("protocol", "no AUTH in time"), o.timeoutMs ?? 10_000);
    const onData = (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      } catch (e) {
        refuse("protocol", (e as Error).message);
        return;
      }
      if (frames.length === 0) return;
      // Nothing may follow AUTH before our answer: the client waits for ACCEPT.
      socket.off("data", onData);
      socket.pause();
      verify(frames[0], frames.length).catch((e) => refuse("protocol", String(e)));
    };
    const verify = async (frame: Frame, count: number) => {
      if (frame.type !== FrameType.auth || count > 1) return refuse("protocol", "expected one AUTH frame");
      const auth = decodeAuth(frame.payload);
      const binding = channelBinding(socket, "server");
      if (binding === null) return refuse("protocol", "no TLS Finished messages to bind to");
      const psk = await o.lookupPsk(auth.identity);
      if (done) return;
      // An unknown identity costs the same HMAC as a known one, so timing does not tell them apart.
      const key = psk ?? new Uint8Array(randomBytes(32));
      const expected = carrierProof(key, "client", auth.identity, binding);
      if (!proofMatches(expected, auth.proof) || psk === null) {
        return refuse("key", "unknown identity or wrong key");
      }
      socket.write(encodeFrame(FrameType.accept, carrierProof(psk, "server", auth.identity, binding)));
      const session = new TcpSession(socket, {
        id: Array.from(randomBytes(6), (b) => b.toString(16).padStart(2, "0")).join(""),
        identity: auth.identity,
        remoteAddress: remote,
        decoder: new FrameDecoder(),
      });
      finish(session);
      socket.resume();
    };
    socket.setNoDelay?.(true);
    // A reset after we refused (or after the session took over) must not become an uncaught error.
    socket.on("error", () => {});
    socket.on("data", onData);
    socket.once("error", onGone);
    socket.once("close", onGone);
  });
}
