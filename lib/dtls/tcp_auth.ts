/**
 * The TCP carrier's PSK proofs. The server's certificate authenticates the server to the client;
 * the PSK proves the client (and, as in the DTLS PSK handshake, the server back). Each proof is
 * HMAC-SHA256 under the PSK over a role label, the identity and both TLS Finished messages of
 * this connection (tls-unique channel binding, RFC 5929): the Finished messages are unique per
 * TLS handshake, so a proof captured from one connection is worthless on any other, and a relay
 * that terminates TLS itself cannot forward a proof made for its own connection.
 * (node:tls in Deno has no exportKeyingMaterial; getFinished/getPeerFinished work.)
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import { PROOF_LENGTH } from "./tcp_frame.ts";

/** The two Finished messages of a TLS connection, in client-then-server order. */
export interface ChannelBinding {
  clientFinished: Uint8Array;
  serverFinished: Uint8Array;
}

interface FinishedSource {
  getFinished(): Buffer | undefined;
  getPeerFinished(): Buffer | undefined;
}

/** The binding of a connected TLS socket, or null when the runtime cannot give it. */
export function channelBinding(socket: FinishedSource, role: "client" | "server"): ChannelBinding | null {
  const own = socket.getFinished?.();
  const peer = socket.getPeerFinished?.();
  if (!own || !peer || own.length === 0 || peer.length === 0) return null;
  const [clientFinished, serverFinished] = role === "client" ? [own, peer] : [peer, own];
  return { clientFinished: new Uint8Array(clientFinished), serverFinished: new Uint8Array(serverFinished) };
}

/** The proof one side sends: HMAC(psk, label ‖ len‖identity ‖ len‖client Finished ‖ len‖server Finished). */
export function carrierProof(
  psk: Uint8Array,
  role: "client" | "server",
  identity: string,
  binding: ChannelBinding,
): Uint8Array {
  const mac = createHmac("sha256", psk);
  mac.update(`hopgate/1 tcp carrier ${role} proof`);
  for (const part of [new TextEncoder().encode(identity), binding.clientFinished, binding.serverFinished]) {
    mac.update(new Uint8Array([part.length >> 8, part.length & 0xff]));
    mac.update(part);
  }
  return new Uint8Array(mac.digest());
}

/** Constant-time comparison of a received proof with the expected one. */
export function proofMatches(expected: Uint8Array, received: Uint8Array): boolean {
  return received.length === PROOF_LENGTH && expected.length === PROOF_LENGTH &&
    timingSafeEqual(expected, received);
}
