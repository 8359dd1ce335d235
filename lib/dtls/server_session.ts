/**
 * One established DTLS association on the server: epoch-1 record protection, the anti-replay
 * window, alerts and close_notify (RFC 5246 §7.2.1), and flight-6 retransmission when the client
 * repeats its final flight (RFC 6347 §4.2.4). Implements the DatagramSession the transport uses.
 */
import type { Logger } from "../log/logger.ts";
import type { RecordOpener } from "./cipher.ts";
import {
  AlertDescription,
  AlertLevel,
  alertName,
  ContentType,
  DTLS_1_2,
  HandshakeType,
} from "./constants.ts";
import type { EstablishedHandshake } from "./handshake.ts";
import type { WriteState } from "./flight.ts";
import { MAX_SEQUENCE, type RecordHeader } from "./record.ts";
import type { ReplayWindow } from "./replay_window.ts";
import type { RecordSealer } from "./cipher.ts";
import {
  type CloseReason,
  DatagramInbox,
  type DatagramSession,
  DatagramTooLargeError,
  type PeerAddress,
  SessionClosedError,
} from "./session.ts";

const MAX_EARLY_DATAGRAMS = 16;

export interface ServerSessionOptions {
  id: string;
  remoteAddress: PeerAddress;
  established: EstablishedHandshake;
  maxDatagramSize: number;
  /** Sends one datagram to the peer (fire and forget, as UDP is). */
  sendDatagram: (datagram: Uint8Array) => void;
  now: () => number;
  logger: Logger;
  /** Called once when the session ends, so the server can forget it. */
  onEnded: (session: ServerSession) => void;
}

export class ServerSession implements DatagramSession {
  readonly id: string;
  readonly identity: string;
  readonly remoteAddress: PeerAddress;
  readonly maxDatagramSize: number;
  readonly closed: Promise<CloseReason>;
  /** Time of the last authenticated record from the peer (for the idle timeout). */
  lastReceivedAt: number;

  #resolveClosed!: (r: CloseReason) => void;
  #reason: CloseReason | undefined;
  /** Datagrams that arrived before a receiver was set (onSession may attach it a little later). */
  readonly #inbox = new DatagramInbox(MAX_EARLY_DATAGRAMS);
  readonly #write: WriteState;
  readonly #sealer: RecordSealer;
  readonly #opener: RecordOpener;
  readonly #window: ReplayWindow;
  /** Flight 6, kept until the client proves it has it by sending application data. */
  #finalFlight: Uint8Array[] | null;
  readonly #clientFinalSeqs: number[];
  readonly #header: RecordHeader = { type: 0, version: DTLS_1_2, epoch: 1, sequence: 0, length: 0 };
  /** The options without `established`: its final flight and handshake leftovers are not kept. */
  readonly #o: Omit<ServerSessionOptions, "established">;

  constructor(o: ServerSessionOptions) {
    const { established: _, ...rest } = o;
    this.#o = rest;
    this.id = o.id;
    this.identity = o.established.identity;
    this.remoteAddress = o.remoteAddress;
    this.maxDatagramSize = o.maxDatagramSize;
    this.#write = o.established.write;
    if (this.#write.sealer === null) throw new Error("an established session needs an epoch-1 sealer");
    this.#sealer = this.#write.sealer;
    this.#opener = o.established.opener;
    this.#window = o.established.readWindow;
    this.#finalFlight = o.established.finalFlight;
    this.#clientFinalSeqs = o.established.clientFinalSeqs;
    this.lastReceivedAt = o.now();
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  get isClosed(): boolean {
    return this.#reason !== undefined;
  }

  send(data: Uint8Array): void {
    if (this.#reason !== undefined) throw new SessionClosedError(this.#reason);
    if (data.length > this.maxDatagramSize) {
      throw new DatagramTooLargeError(data.length, this.maxDatagramSize);
    }
    this.#sendRecord(ContentType.application_data, data);
  }

  onDatagram(receiver: ((data: Uint8Array) => void) | null): void {
    this.#inbox.set(receiver);
  }

  close(message = "closed locally"): void {
    this.terminate({ code: "closed", message, remote: false }, AlertDescription.close_notify);
  }

  /**
   * Handles one record from the peer. `fragment` views the server's reused receive buffer;
   * only the decrypted plaintext (a fresh buffer) outlives this call.
   */
  handleRecord(h: RecordHeader, fragment: Uint8Array): void {
    if (this.#reason !== undefined) return;
    if (h.epoch === 0) {
      // Unprotected: only a repeated flight 5 (our flight 6 was lost) means anything here.
      if (h.type === ContentType.handshake && this.#finalFlight !== null && fragment.length >= 12) {
        const msgType = fragment[0];
        const seq = (fragment[4] << 8) | fragment[5];
        if (msgType === HandshakeType.client_key_exchange && this.#clientFinalSeqs.includes(seq)) {
          this.#resendFinalFlight();
        }
      }
      return;
    }
    if (h.epoch !== 1 || !this.#window.mayAccept(h.sequence)) return;
    const plaintext = this.#opener.open(h, fragment);
    // RFC 6347 §4.1.2.1: records that fail authentication are dropped silently.
    if (plaintext === null) return;
    this.#window.accept(h.sequence);
    this.lastReceivedAt = this.#o.now();
    switch (h.type) {
      case ContentType.application_data:
        this.#finalFlight = null;
        if (plaintext.length > this.maxDatagramSize) return;
        this.#inbox.deliver(plaintext);
        return;
      case ContentType.alert:
        this.#handleAlert(plaintext);
        return;
      case ContentType.handshake:
        this.#handleHandshake(plaintext);
        return;
    }
  }

  #handleHandshake(plaintext: Uint8Array): void {
    if (plaintext.length < 12) return;
    const msgType = plaintext[0];
    const seq = (plaintext[4] << 8) | plaintext[5];
    if (msgType === HandshakeType.finished && this.#clientFinalSeqs.includes(seq)) {
      if (this.#finalFlight !== null) this.#resendFinalFlight();
      return;
    }
    if (msgType === HandshakeType.client_hello) {
      // Renegotiation is refused (RFC 5746 §4.4 allows declining with a warning).
      this.#sendRecord(
        ContentType.alert,
        new Uint8Array([AlertLevel.warning, AlertDescription.no_renegotiation]),
      );
    }
  }

  #handleAlert(plaintext: Uint8Array): void {
    if (plaintext.length !== 2) return;
    const [level, description] = plaintext;
    if (description === AlertDescription.close_notify) {
      // RFC 5246 §7.2.1: answer close_notify with close_notify.
      this.terminate({ code: "close_notify", message: "peer sent close_notify", remote: true }, description);
    } else if (level === AlertLevel.fatal) {
      this.terminate({
        code: "alert",
        message: `peer sent fatal alert ${alertName(description)}`,
        remote: true,
      });
    } else {
      this.#o.logger.debug(
        { session: this.id, alert: alertName(description) },
        "dtls: warning alert from peer",
      );
    }
  }

  #resendFinalFlight(): void {
    for (const d of this.#finalFlight ?? []) this.#o.sendDatagram(d);
  }

  #sendRecord(type: number, payload: Uint8Array): void {
    if (this.#write.nextSeq > MAX_SEQUENCE) {
      // RFC 6347 §4.1: a sequence number must never repeat under one key; we do not renegotiate.
      this.terminate({ code: "closed", message: "record sequence numbers exhausted", remote: false });
      return;
    }
    const h = this.#header;
    h.type = type;
    h.sequence = this.#write.nextSeq++;
    this.#o.sendDatagram(this.#sealer.seal(h, payload));
  }

  /**
   * Ends the session with a reason; sends the given alert first (close_notify as a warning, any
   * other as fatal).
   */
  terminate(reason: CloseReason, alert?: number): void {
    if (this.#reason !== undefined) return;
    if (alert !== undefined) {
      const level = alert === AlertDescription.close_notify ? AlertLevel.warning : AlertLevel.fatal;
      this.#sendRecord(ContentType.alert, new Uint8Array([level, alert]));
    }
    this.#reason = reason;
    this.#inbox.clear();
    this.#finalFlight = null;
    this.#o.onEnded(this);
    this.#resolveClosed(reason);
  }
}
