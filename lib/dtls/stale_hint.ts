/**
 * The "no session here" hint. A server that gets protected (epoch ≥ 1) records from an address
 * it has no association for (it restarted, or the client's NAT mapping changed) answers with one
 * unprotected warning alert (user_canceled, epoch 0). Anyone on the path can forge it, so it is
 * only a hint: the client reacts with a liveness probe of its own session, never a close. DTLS
 * stacks drop epoch-0 records once their handshake is done, so the hint is invisible to them.
 */
import { AlertLevel, ContentType, DTLS_1_2 } from "./constants.ts";

const USER_CANCELED = 90;

/** The hint datagram: one DTLS 1.2 record, epoch 0, sequence 0, alert(warning, user_canceled). */
export const STALE_SESSION_HINT: Uint8Array = new Uint8Array([
  ContentType.alert,
  DTLS_1_2 >> 8,
  DTLS_1_2 & 0xff,
  0,
  0, // epoch 0
  0,
  0,
  0,
  0,
  0,
  0, // sequence 0
  0,
  2, // length
  AlertLevel.warning,
  USER_CANCELED,
]);

/** True when a datagram is exactly the hint. */
export function isStaleSessionHint(datagram: Uint8Array): boolean {
  if (datagram.length !== STALE_SESSION_HINT.length) return false;
  for (let i = 0; i < datagram.length; i++) if (datagram[i] !== STALE_SESSION_HINT[i]) return false;
  return true;
}

/**
 * Bounds the hints a server sends: one per address per `perAddressMs`, and at most `perSecond`
 * in all, so stray or spoofed traffic cannot turn the server into a reflector (a hint is never
 * larger than the record that caused it).
 */
export class HintLimiter {
  readonly #last = new Map<string, number>();
  #windowStart = 0;
  #inWindow = 0;

  constructor(readonly perAddressMs = 500, readonly perSecond = 200, readonly maxAddresses = 4096) {}

  /** Whether a hint may go to `key` now. */
  allow(key: string, now: number): boolean {
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#inWindow = 0;
    }
    if (this.#inWindow >= this.perSecond) return false;
    const last = this.#last.get(key);
    if (last !== undefined && now - last < this.perAddressMs) return false;
    if (this.#last.size >= this.maxAddresses) {
      for (const [k, t] of this.#last) if (now - t >= this.perAddressMs) this.#last.delete(k);
      if (this.#last.size >= this.maxAddresses) return false;
    }
    this.#last.set(key, now);
    this.#inWindow++;
    return true;
  }
}
