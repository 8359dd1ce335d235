/**
 * A scripted DTLS 1.2 PSK client built from our own codecs, for driving the server's handshake
 * state machine in memory: it can fragment and reorder its flight, offer EMS or not, and use a
 * wrong key. Not a general client: one handshake, in order, no retransmission of its own.
 */
import { RecordOpener, RecordSealer, SUITES } from "../../lib/dtls/cipher.ts";
import { ContentType, DTLS_1_2, HandshakeType } from "../../lib/dtls/constants.ts";
import { type WriteState } from "../../lib/dtls/flight.ts";
import {
  type ClientHello,
  decodeHandshakeFragments,
  decodeServerHello,
  encodeClientHello,
  encodeHandshakeMessage,
  encodePskIdentity,
  fragmentHandshakeMessage,
} from "../../lib/dtls/messages.ts";
import {
  extendedMasterSecret,
  finishedVerifyData,
  keyBlock,
  masterSecret,
  pskPremasterSecret,
  sha256,
} from "../../lib/dtls/prf.ts";
import { decodeRecords, type DtlsRecord, encodeRecord } from "../../lib/dtls/record.ts";
import { HandshakeReassembler } from "../../lib/dtls/reassembly.ts";

const enc = new TextEncoder();

export interface FakeClientOptions {
  identity: string;
  psk: Uint8Array;
  ems?: boolean;
}

export class FakeClient {
  readonly hello: ClientHello;
  readonly helloBody: Uint8Array;
  readonly transcript: Uint8Array[] = [];
  serverRandom: Uint8Array | undefined;
  master: Uint8Array | undefined;
  sealer: RecordSealer | undefined;
  opener: RecordOpener | undefined;
  epoch0: WriteState = { epoch: 0, nextSeq: 1, sealer: null };
  epoch1: WriteState = { epoch: 1, nextSeq: 0, sealer: null };
  readonly #reassembler = new HandshakeReassembler(1);
  readonly #seen: number[] = [];
  #finished: Uint8Array | undefined;

  constructor(readonly o: FakeClientOptions) {
    this.hello = {
      clientVersion: DTLS_1_2,
      random: crypto.getRandomValues(new Uint8Array(32)),
      sessionId: new Uint8Array(0),
      cookie: new Uint8Array(32).fill(7),
      cipherSuites: [0x00a8, 0x00ff],
      compressionMethods: Uint8Array.of(0),
      extensions: o.ems ? [{ type: 23, data: new Uint8Array(0) }] : [],
    };
    this.helloBody = encodeClientHello(this.hello);
    // Flight 3's ClientHello is message 1 (message 0 went before the HelloVerifyRequest).
    this.transcript.push(encodeHandshakeMessage(HandshakeType.client_hello, 1, this.helloBody));
  }

  /** Feeds server datagrams; returns the handshake message types completed so far, in order. */
  receiveFlight4(datagrams: Uint8Array[]): number[] {
    for (const d of datagrams) {
      for (const r of decodeRecords(d)) {
        if (r.type !== ContentType.handshake || r.epoch !== 0) continue;
        for (const f of decodeHandshakeFragments(r.fragment)) {
          for (const m of this.#reassembler.add({ ...f, body: f.body.slice() })) {
            this.transcript.push(encodeHandshakeMessage(m.msgType, m.messageSeq, m.body));
            this.#seen.push(m.msgType);
            if (m.msgType === HandshakeType.server_hello) {
              this.serverRandom = decodeServerHello(m.body).random;
            }
          }
        }
      }
    }
    return this.#seen;
  }

  /**
   * Flight 5 as records (not datagrams, so a test can reorder them): the ClientKeyExchange in
   * fragments of at most `fragmentBody` bytes, ChangeCipherSpec, Finished.
   */
  flight5(fragmentBody = 1000): DtlsRecord[] {
    if (this.serverRandom === undefined) throw new Error("no ServerHello yet");
    const cke = encodePskIdentity(enc.encode(this.o.identity));
    this.transcript.push(encodeHandshakeMessage(HandshakeType.client_key_exchange, 2, cke));
    const pms = pskPremasterSecret(this.o.psk);
    this.master = this.o.ems
      ? extendedMasterSecret(pms, sha256(...this.transcript))
      : masterSecret(pms, this.hello.random, this.serverRandom);
    const kb = keyBlock(this.master, this.hello.random, this.serverRandom);
    const suite = SUITES[0x00a8];
    this.sealer = new RecordSealer(suite, kb.clientWriteKey, kb.clientWriteIv);
    this.opener = new RecordOpener(suite, kb.serverWriteKey, kb.serverWriteIv);
    this.epoch1.sealer = this.sealer;
    const out: DtlsRecord[] = [];
    for (const frag of fragmentHandshakeMessage(HandshakeType.client_key_exchange, 2, cke, fragmentBody)) {
      out.push(this.#plain(ContentType.handshake, frag));
    }
    out.push(this.#plain(ContentType.change_cipher_spec, Uint8Array.of(1)));
    const verify = finishedVerifyData(this.master, "client", sha256(...this.transcript));
    this.#finished = encodeHandshakeMessage(HandshakeType.finished, 3, verify);
    this.transcript.push(this.#finished);
    out.push(this.sealed(ContentType.handshake, this.#finished));
    return out;
  }

  /** The same flight 5 again, as a retransmission: same messages, new record sequence numbers. */
  flight5Retransmission(flight: DtlsRecord[]): DtlsRecord[] {
    return flight.map((r) => {
      if (r.epoch === 1) return this.sealed(ContentType.handshake, this.#finished ?? new Uint8Array(0));
      return this.#plain(r.type, r.fragment);
    });
  }

  /** Checks flight 6: returns true when the server's Finished decrypts and verifies. */
  verifyFlight6(datagrams: Uint8Array[]): boolean {
    if (this.master === undefined || this.opener === undefined) throw new Error("no keys yet");
    for (const d of datagrams) {
      for (const r of decodeRecords(d)) {
        if (r.epoch !== 1 || r.type !== ContentType.handshake) continue;
        const pt = this.opener.open(r, r.fragment);
        if (pt === null) return false;
        const [f] = decodeHandshakeFragments(pt);
        const expected = finishedVerifyData(this.master, "server", sha256(...this.transcript));
        return f.msgType === HandshakeType.finished && f.body.every((b, i) => b === expected[i]);
      }
    }
    return false;
  }

  /** One epoch-1 record, sealed with the client's keys. */
  sealed(type: number, payload: Uint8Array): DtlsRecord {
    if (this.sealer === undefined) throw new Error("no keys yet");
    const rec = this.sealer.seal(
      { type, version: DTLS_1_2, epoch: 1, sequence: this.epoch1.nextSeq++, length: 0 },
      payload,
    );
    return decodeRecords(rec)[0];
  }

  #plain(type: number, payload: Uint8Array): DtlsRecord {
    const seq = this.epoch0.nextSeq++;
    return decodeRecords(
      encodeRecord({
        type,
        version: DTLS_1_2,
        epoch: 0,
        sequence: seq,
        length: payload.length,
        fragment: payload,
      }),
    )[0];
  }
}
