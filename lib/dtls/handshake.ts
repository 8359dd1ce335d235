/**
 * The server's side of the DTLS 1.2 PSK handshake as the flights of RFC 6347 §4.2.4:
 *
 *   flight 1/2  ClientHello → HelloVerifyRequest   stateless, in server.ts (cookie.ts)
 *   flight 3    ClientHello with a valid cookie     creates a ServerHandshake
 *   flight 4    ServerHello, [ServerKeyExchange], ServerHelloDone      sent; WAITING, retransmitted on timer
 *   flight 5    ClientKeyExchange, ChangeCipherSpec, Finished          received
 *   flight 6    ChangeCipherSpec, Finished          sent; FINISHED: the session resends it if flight 5 repeats
 *
 * The states below are the points between those flights. Time comes from the injected clock.
 */
import { randomBytes } from "node:crypto";
import type { Clock, TimerId } from "../log/clock.ts";
import type { Logger } from "../log/logger.ts";
import { type AeadSuite, RecordOpener, recordOverhead, RecordSealer } from "./cipher.ts";
import {
  AlertDescription,
  AlertLevel,
  ContentType,
  DTLS_1_2,
  ExtensionType,
  HandshakeType,
} from "./constants.ts";
import { FlightBuilder, sealRecord, type WriteState } from "./flight.ts";
import {
  type ClientHello,
  decodeFinished,
  decodeHandshakeFragments,
  decodePskIdentity,
  encodeHandshakeMessage,
  encodePskIdentity,
  encodeServerHello,
  type Extension,
} from "./messages.ts";
import {
  extendedMasterSecret,
  finishedVerifyData,
  keyBlock,
  masterSecret,
  pskPremasterSecret,
  sha256,
} from "./prf.ts";
import type { RecordHeader } from "./record.ts";
import { type HandshakeMessage, HandshakeReassembler } from "./reassembly.ts";
import { ReplayWindow } from "./replay_window.ts";
import { bytesEqual } from "./bytes.ts";

export interface HandshakeOptions {
  clock: Clock;
  logger: Logger;
  lookupPsk: (identity: string) => Promise<Uint8Array | null>;
  send: (datagram: Uint8Array) => void;
  /** Largest datagram a flight may use. */
  mtu: number;
  /** RFC 6347 §4.2.4.1: 1 s initial timer, doubled on each expiry, capped. */
  retransmitInitialMs: number;
  retransmitMaxMs: number;
  /** The whole handshake must finish within this, or its state is dropped. */
  timeoutMs: number;
  identityHint?: string;
}

/** What an established handshake hands to its session: keys, sequence state and the last flight. */
export interface EstablishedHandshake {
  identity: string;
  suite: AeadSuite;
  write: WriteState;
  opener: RecordOpener;
  readWindow: ReplayWindow;
  /** Flight 6, resent verbatim when the client repeats flight 5. */
  finalFlight: Uint8Array[];
  /** message_seq values of the client's flight 5, to recognise its retransmission. */
  clientFinalSeqs: number[];
}

export type HandshakeResult =
  | { ok: true; established: EstablishedHandshake }
  | { ok: false; reason: string; alert?: number };

type State =
  | { name: "flight4_sent" }
  | { name: "awaiting_psk"; identity: string }
  | { name: "awaiting_finished"; identity: string; keys: DerivedKeys }
  | { name: "done" };

interface DerivedKeys {
  master: Uint8Array;
  sealer: RecordSealer;
  opener: RecordOpener;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const MAX_BUFFERED_RECORDS = 8;

export class ServerHandshake {
  #state: State = { name: "flight4_sent" };
  readonly #o: HandshakeOptions;
  readonly #suite: AeadSuite;
  readonly #ems: boolean;
  readonly #clientRandom: Uint8Array;
  readonly #serverRandom = new Uint8Array(randomBytes(32));
  readonly #transcript: Uint8Array[] = [];
  readonly #epoch0: WriteState;
  readonly #reassembler: HandshakeReassembler;
  readonly #readWindow = new ReplayWindow();
  #serverSeq: number;
  #flight4: Uint8Array[] = [];
  #early: Array<[RecordHeader, Uint8Array]> = [];
  /** message_seq of the client's ClientKeyExchange and Finished, for spotting a repeated flight 5. */
  #clientFinalSeqs: number[] = [];
  #timer: TimerId | undefined;
  #deadline: TimerId | undefined;
  #interval: number;
  #onDone: (r: HandshakeResult) => void;
  #identity: string | undefined;

  /**
   * Starts at flight 3: `hello` carried a valid cookie. Sends flight 4 at once.
   * `onDone` is called exactly once, when the handshake succeeds or fails.
   */
  constructor(
    options: HandshakeOptions,
    hello: ClientHello,
    helloMessage: { messageSeq: number; body: Uint8Array; recordSeq: number },
    suite: AeadSuite,
    onDone: (r: HandshakeResult) => void,
  ) {
    this.#o = options;
    this.#suite = suite;
    this.#onDone = onDone;
    this.#clientRandom = hello.random.slice();
    this.#ems = hello.extensions.some((e) => e.type === ExtensionType.extended_master_secret);
    // RFC 6347 §4.2.2: after a stateless HelloVerifyRequest the server continues from the client's numbering.
    this.#serverSeq = helloMessage.messageSeq;
    this.#epoch0 = { epoch: 0, nextSeq: helloMessage.recordSeq, sealer: null };
    this.#reassembler = new HandshakeReassembler(helloMessage.messageSeq + 1);
    // RFC 6347 §4.2.6: the first ClientHello and the HelloVerifyRequest are not hashed.
    this.#transcript.push(
      encodeHandshakeMessage(HandshakeType.client_hello, helloMessage.messageSeq, helloMessage.body),
    );
    this.#interval = options.retransmitInitialMs;
    this.#sendFlight4(hello);
    this.#deadline = options.clock.setTimeout(
      () => this.#fail(`handshake not finished within ${options.timeoutMs} ms`),
      options.timeoutMs,
    );
  }

  /** The PSK identity the client named, once its ClientKeyExchange arrived (for failure logs). */
  get identity(): string | undefined {
    return this.#identity;
  }

  get state(): State["name"] {
    return this.#state.name;
  }

  /** Flight 4: ServerHello, the optional identity hint, ServerHelloDone (RFC 4279 §2). */
  #sendFlight4(hello: ClientHello): void {
    const extensions: Extension[] = [];
    if (this.#ems) extensions.push({ type: ExtensionType.extended_master_secret, data: new Uint8Array(0) });
    // RFC 5746 §3.6: acknowledge secure renegotiation support with an empty renegotiated_connection.
    const ri = hello.extensions.some((e) => e.type === ExtensionType.renegotiation_info) ||
      hello.cipherSuites.includes(0x00ff);
    if (ri) extensions.push({ type: ExtensionType.renegotiation_info, data: new Uint8Array([0]) });
    const f = new FlightBuilder(this.#o.mtu);
    this.#addMessage(
      f,
      HandshakeType.server_hello,
      encodeServerHello({
        serverVersion: DTLS_1_2,
        random: this.#serverRandom,
        sessionId: new Uint8Array(0),
        cipherSuite: this.#suite.id,
        compressionMethod: 0,
        extensions,
      }),
    );
    if (this.#o.identityHint !== undefined) {
      this.#addMessage(
        f,
        HandshakeType.server_key_exchange,
        encodePskIdentity(encoder.encode(this.#o.identityHint)),
      );
    }
    this.#addMessage(f, HandshakeType.server_hello_done, new Uint8Array(0));
    this.#flight4 = f.datagrams();
    this.#transmitFlight4();
  }

  #addMessage(f: FlightBuilder, msgType: number, body: Uint8Array): void {
    const seq = this.#serverSeq++;
    this.#transcript.push(encodeHandshakeMessage(msgType, seq, body));
    f.handshake(this.#epoch0, msgType, seq, body);
  }

  #transmitFlight4(): void {
    for (const d of this.#flight4) this.#o.send(d);
    this.#timer = this.#o.clock.setTimeout(() => {
      if (this.#state.name === "done") return;
      // RFC 6347 §4.2.4.1: double the timer on each expiry, up to the cap.
      this.#interval = Math.min(this.#interval * 2, this.#o.retransmitMaxMs);
      this.#transmitFlight4();
    }, this.#interval);
  }

  /** Feeds one record from the client; `fragment` may be a view into a reused buffer. */
  handleRecord(h: RecordHeader, fragment: Uint8Array): void {
    const s = this.#state;
    if (s.name === "done") return;
    if (h.epoch === 0) {
      if (!this.#readWindow.mayAccept(h.sequence)) return;
      this.#readWindow.accept(h.sequence);
      if (h.type === ContentType.handshake) this.#handleEpoch0Handshake(fragment);
      else if (h.type === ContentType.alert) this.#handleAlert(fragment);
      // change_cipher_spec carries nothing we need: an epoch-1 record proves the switch.
      return;
    }
    if (h.epoch !== 1) return;
    if (s.name !== "awaiting_finished") {
      // Epoch-1 records that overtake the key exchange (or its PSK lookup) wait for the keys.
      if (this.#early.length < MAX_BUFFERED_RECORDS) this.#early.push([{ ...h }, fragment.slice()]);
      return;
    }
    const plaintext = s.keys.opener.open(h, fragment);
    if (plaintext === null) {
      // A wrong PSK shows here first: the client's Finished does not authenticate. Saying so at once
      // (rather than dropping silently) lets a client with a wrong key fail fast.
      this.#fail(
        "client Finished record did not authenticate (wrong key or identity)",
        AlertDescription.bad_record_mac,
      );
      return;
    }
    if (h.type === ContentType.handshake) this.#handleFinished(h, plaintext, s.identity, s.keys);
  }

  #handleEpoch0Handshake(fragment: Uint8Array): void {
    let messages: HandshakeMessage[] = [];
    try {
      for (const f of decodeHandshakeFragments(fragment)) {
        if (f.messageSeq < this.#reassembler.nextSeq) {
          // A repeated flight 3 means our flight 4 was lost (RFC 6347 §4.2.4).
          if (f.msgType === HandshakeType.client_hello && this.#state.name === "flight4_sent") this.#resend();
          continue;
        }
        messages = messages.concat(this.#reassembler.add({ ...f, body: f.body.slice() }));
      }
    } catch (e) {
      // Epoch 0 is unauthenticated: a garbled or forged fragment is dropped, not allowed to end
      // the handshake (RFC 6347 §4.1.2.7 prefers discarding invalid records).
      this.#o.logger.debug({ err: (e as Error).message }, "dtls: dropped a malformed handshake fragment");
      return;
    }
    for (const m of messages) {
      if (m.msgType !== HandshakeType.client_key_exchange || this.#state.name !== "flight4_sent") {
        this.#fail(`unexpected handshake message ${m.msgType}`, AlertDescription.unexpected_message);
        return;
      }
      this.#handleClientKeyExchange(m);
    }
  }

  #resend(): void {
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#transmitFlight4();
  }

  #handleClientKeyExchange(m: HandshakeMessage): void {
    let identity: string;
    try {
      identity = decoder.decode(decodePskIdentity(m.body, "ClientKeyExchange"));
    } catch (e) {
      this.#fail((e as Error).message, AlertDescription.decode_error);
      return;
    }
    this.#transcript.push(encodeHandshakeMessage(m.msgType, m.messageSeq, m.body));
    this.#clientFinalSeqs.push(m.messageSeq);
    this.#identity = identity;
    const state: State = { name: "awaiting_psk", identity };
    this.#state = state;
    // Through a promise chain so that a lookup throwing synchronously is handled the same way.
    Promise.resolve(identity).then((id) => this.#o.lookupPsk(id)).then(
      (psk) => this.#onPsk(state, psk),
      (e) => this.#fail(`PSK lookup failed: ${(e as Error)?.message ?? e}`, AlertDescription.internal_error),
    );
  }

  #onPsk(state: Extract<State, { name: "awaiting_psk" }>, psk: Uint8Array | null): void {
    if (this.#state !== state) return;
    // An unknown identity gets a random key so that it fails exactly like a wrong key, at Finished.
    const key = psk ?? new Uint8Array(randomBytes(32));
    if (psk === null) this.#o.logger.debug({ identity: state.identity }, "dtls: unknown PSK identity");
    const premaster = pskPremasterSecret(key);
    const master = this.#ems
      ? extendedMasterSecret(premaster, sha256(...this.#transcript))
      : masterSecret(premaster, this.#clientRandom, this.#serverRandom);
    const kb = keyBlock(master, this.#clientRandom, this.#serverRandom);
    const keys: DerivedKeys = {
      master,
      sealer: new RecordSealer(this.#suite, kb.serverWriteKey, kb.serverWriteIv),
      opener: new RecordOpener(this.#suite, kb.clientWriteKey, kb.clientWriteIv),
    };
    this.#state = { name: "awaiting_finished", identity: state.identity, keys };
    const early = this.#early;
    this.#early = [];
    for (const [h, fragment] of early) this.handleRecord(h, fragment);
  }

  #handleFinished(h: RecordHeader, plaintext: Uint8Array, identity: string, keys: DerivedKeys): void {
    let verify: Uint8Array;
    let seq: number;
    try {
      const frags = decodeHandshakeFragments(plaintext);
      const f = frags[0];
      if (frags.length !== 1 || f?.msgType !== HandshakeType.finished || f.body.length !== f.length) {
        throw new Error("expected one unfragmented Finished");
      }
      verify = decodeFinished(f.body);
      seq = f.messageSeq;
    } catch (e) {
      this.#fail(`bad client Finished: ${(e as Error).message}`, AlertDescription.decode_error);
      return;
    }
    const expected = finishedVerifyData(keys.master, "client", sha256(...this.#transcript));
    if (!bytesEqual(verify, expected)) {
      this.#fail(
        "client Finished verify_data mismatch (wrong key or identity)",
        AlertDescription.decrypt_error,
      );
      return;
    }
    this.#readWindow.accept(h.sequence);
    this.#transcript.push(encodeHandshakeMessage(HandshakeType.finished, seq, verify));
    this.#clientFinalSeqs.push(seq);
    // Flight 6: ChangeCipherSpec in epoch 0, then Finished as the first record of epoch 1.
    const serverVerify = finishedVerifyData(keys.master, "server", sha256(...this.#transcript));
    const write: WriteState = { epoch: 1, nextSeq: 0, sealer: keys.sealer };
    const f = new FlightBuilder(this.#o.mtu);
    f.record(this.#epoch0, ContentType.change_cipher_spec, new Uint8Array([1]));
    f.handshake(write, HandshakeType.finished, this.#serverSeq++, serverVerify, recordOverhead(this.#suite));
    const finalFlight = f.datagrams();
    const readWindow = new ReplayWindow();
    readWindow.accept(h.sequence);
    this.#finish({
      ok: true,
      established: {
        identity,
        suite: this.#suite,
        write,
        opener: keys.opener,
        readWindow,
        finalFlight,
        clientFinalSeqs: this.#clientFinalSeqs,
      },
    });
    for (const d of finalFlight) this.#o.send(d);
  }

  #handleAlert(fragment: Uint8Array): void {
    if (fragment.length !== 2) return;
    if (fragment[0] === AlertLevel.fatal || fragment[1] === AlertDescription.close_notify) {
      this.#finish({ ok: false, reason: `client sent alert ${fragment[1]}` });
    }
  }

  /** Fails the handshake, telling the client with a fatal alert in epoch 0 when there is one to send. */
  #fail(reason: string, alert?: number): void {
    if (this.#state.name === "done") return;
    if (alert !== undefined) {
      this.#o.send(sealRecord(this.#epoch0, ContentType.alert, new Uint8Array([2, alert])));
    }
    this.#finish({ ok: false, reason, alert });
  }

  /** Drops the handshake without a word (server shutdown, replaced by a newer one). */
  abort(reason: string): void {
    this.#finish({ ok: false, reason });
  }

  #finish(result: HandshakeResult): void {
    if (this.#state.name === "done") return;
    this.#state = { name: "done" };
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    if (this.#deadline !== undefined) this.#o.clock.clearTimeout(this.#deadline);
    this.#onDone(result);
  }
}
