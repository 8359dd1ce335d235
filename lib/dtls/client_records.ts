/**
 * The client's record layer once the handshake is done: seals application data and alerts in
 * the write epoch, opens the server's records with the replay window, and classifies what came
 * in. No sockets here (client_udp.ts carries the bytes), so it is tested on its own. The codec
 * and cipher are the server's (record.ts, cipher.ts, replay_window.ts).
 */
import { AlertDescription, AlertLevel, alertName, ContentType, DTLS_1_2 } from "./constants.ts";
import { MAX_SEQUENCE, newRecordHeader, readRecordHeader, type RecordHeader } from "./record.ts";
import type { TakenOverSession } from "./client_takeover.ts";
import { DtlsDecodeError } from "./errors.ts";

/** What one incoming record meant to the session. */
export type Inbound =
  | { kind: "data"; data: Uint8Array }
  | { kind: "close_notify" }
  | { kind: "fatal"; alert: string };

/** Counters a test or the admin view can read: they prove the fast path carried the records. */
export interface RecordCounters {
  sealed: number;
  opened: number;
  /** Records dropped: not epoch 1, replayed, or failing authentication. */
  dropped: number;
}

export class ClientRecordLayer {
  readonly counters: RecordCounters = { sealed: 0, opened: 0, dropped: 0 };
  readonly #s: TakenOverSession;
  #nextSeq: number;
  readonly #out: RecordHeader;
  readonly #in: RecordHeader = newRecordHeader();

  constructor(s: TakenOverSession) {
    this.#s = s;
    this.#nextSeq = s.nextSeq;
    this.#out = { type: 0, version: DTLS_1_2, epoch: s.epoch, sequence: 0, length: 0 };
  }

  /** One protected record; null once the 48-bit sequence space is spent (the session must end). */
  seal(type: number, payload: Uint8Array): Uint8Array | null {
    if (this.#nextSeq > MAX_SEQUENCE) return null;
    const h = this.#out;
    h.type = type;
    h.sequence = this.#nextSeq++;
    this.counters.sealed++;
    return this.#s.sealer.seal(h, payload);
  }

  /** The close_notify alert record (RFC 5246 §7.2.1). */
  closeNotify(): Uint8Array | null {
    return this.seal(ContentType.alert, new Uint8Array([AlertLevel.warning, AlertDescription.close_notify]));
  }

  /**
   * Opens every record of a datagram and hands each meaningful one to `on`. `datagram` may be a
   * reused receive buffer: what `on` gets is always a fresh plaintext.
   */
  receive(datagram: Uint8Array, on: (r: Inbound) => void): void {
    const h = this.#in;
    let offset = 0;
    while (offset < datagram.length) {
      let end: number;
      try {
        end = readRecordHeader(datagram, offset, h);
      } catch (e) {
        if (e instanceof DtlsDecodeError) {
          this.counters.dropped++;
          return; // a malformed record: the rest of the datagram cannot be framed
        }
        throw e;
      }
      const fragment = datagram.subarray(offset + 13, end);
      offset = end;
      // Epoch 0 (repeated handshake flights, the stale hint) means nothing to an established client.
      if (h.epoch !== this.#s.epoch || !this.#s.window.mayAccept(h.sequence)) {
        this.counters.dropped++;
        continue;
      }
      const plaintext = this.#s.opener.open(h, fragment);
      if (plaintext === null) {
        this.counters.dropped++; // RFC 6347 §4.1.2.1: dropped silently
        continue;
      }
      this.#s.window.accept(h.sequence);
      this.counters.opened++;
      if (h.type === ContentType.application_data) on({ kind: "data", data: plaintext });
      else if (h.type === ContentType.alert && plaintext.length === 2) {
        if (plaintext[1] === AlertDescription.close_notify) on({ kind: "close_notify" });
        else if (plaintext[0] === AlertLevel.fatal) on({ kind: "fatal", alert: alertName(plaintext[1]) });
        // other warnings (no_renegotiation …) change nothing
      }
      // Handshake records (a repeated server Finished) are ignored: we never renegotiate.
    }
  }
}
