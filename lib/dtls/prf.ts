/**
 * TLS 1.2 key derivation (RFC 5246 §5, §8.1, §6.3) with P_SHA256, the PSK premaster secret
 * (RFC 4279 §2) and the extended master secret (RFC 7627 §4).
 */
import { createHash, createHmac } from "node:crypto";
import { concatBytes } from "./bytes.ts";

const encoder = new TextEncoder();

function hmacSha256(key: Uint8Array, ...data: Uint8Array[]): Uint8Array {
  const h = createHmac("sha256", key);
  for (const d of data) h.update(d);
  return new Uint8Array(h.digest());
}

export function sha256(...data: Uint8Array[]): Uint8Array {
  const h = createHash("sha256");
  for (const d of data) h.update(d);
  return new Uint8Array(h.digest());
}

/** P_SHA256(secret, seed) truncated to `length` bytes (RFC 5246 §5). */
export function pSha256(secret: Uint8Array, seed: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let a = seed;
  let filled = 0;
  while (filled < length) {
    a = hmacSha256(secret, a);
    const block = hmacSha256(secret, a, seed);
    out.set(block.subarray(0, Math.min(block.length, length - filled)), filled);
    filled += block.length;
  }
  return out;
}

/** PRF(secret, label, seed) = P_SHA256(secret, label + seed). */
export function prf(secret: Uint8Array, label: string, seed: Uint8Array, length: number): Uint8Array {
  return pSha256(secret, concatBytes([encoder.encode(label), seed]), length);
}

/** RFC 4279 §2: other_secret is N zero bytes for plain PSK; both parts carry a 16-bit length. */
export function pskPremasterSecret(psk: Uint8Array): Uint8Array {
  const n = psk.length;
  const out = new Uint8Array(4 + 2 * n);
  out[0] = n >> 8;
  out[1] = n & 0xff;
  out[2 + n] = n >> 8;
  out[3 + n] = n & 0xff;
  out.set(psk, 4 + n);
  return out;
}

export function masterSecret(
  premaster: Uint8Array,
  clientRandom: Uint8Array,
  serverRandom: Uint8Array,
): Uint8Array {
  return prf(premaster, "master secret", concatBytes([clientRandom, serverRandom]), 48);
}

/** RFC 7627 §4: session_hash is the transcript hash up to and including ClientKeyExchange. */
export function extendedMasterSecret(premaster: Uint8Array, sessionHash: Uint8Array): Uint8Array {
  return prf(premaster, "extended master secret", sessionHash, 48);
}

export interface KeyBlock {
  clientWriteKey: Uint8Array;
  serverWriteKey: Uint8Array;
  clientWriteIv: Uint8Array;
  serverWriteIv: Uint8Array;
}

/** RFC 5246 §6.3 for AEAD suites: no MAC keys; 16-byte keys and 4-byte implicit IVs (RFC 5288 §3, RFC 6655 §3). */
export function keyBlock(master: Uint8Array, clientRandom: Uint8Array, serverRandom: Uint8Array): KeyBlock {
  const kb = prf(master, "key expansion", concatBytes([serverRandom, clientRandom]), 40);
  return {
    clientWriteKey: kb.slice(0, 16),
    serverWriteKey: kb.slice(16, 32),
    clientWriteIv: kb.slice(32, 36),
    serverWriteIv: kb.slice(36, 40),
  };
}

/** RFC 5246 §7.4.9: verify_data over the hash of every handshake message so far. */
export function finishedVerifyData(
  master: Uint8Array,
  sender: "client" | "server",
  transcriptHash: Uint8Array,
): Uint8Array {
  return prf(master, `${sender} finished`, transcriptHash, 12);
}
