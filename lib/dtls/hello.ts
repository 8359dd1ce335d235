/**
 * Flights 1 and 2 (RFC 6347 §4.2.1), without state: reading an initial ClientHello, answering it
 * with a HelloVerifyRequest, and choosing a cipher suite. Nothing here remembers the client.
 */
import { type AeadSuite, SUITES } from "./cipher.ts";
import {
  AlertDescription,
  AlertLevel,
  CipherSuiteId,
  ContentType,
  DTLS_1_0,
  DTLS_1_2,
  HandshakeType,
} from "./constants.ts";
import { sealRecord } from "./flight.ts";
import {
  type ClientHello,
  decodeClientHello,
  decodeHandshakeFragments,
  encodeHandshakeMessage,
  encodeHelloVerifyRequest,
} from "./messages.ts";

export const DEFAULT_SUITES: number[] = [CipherSuiteId.TLS_PSK_WITH_AES_128_GCM_SHA256];

export interface InitialHello {
  hello: ClientHello;
  messageSeq: number;
  /** The ClientHello body; a view into the datagram, copy it to keep it. */
  body: Uint8Array;
}

/**
 * Reads a ClientHello record, or returns null. Stateless processing needs the whole message in
 * one record (nothing may be kept to reassemble it); PSK ClientHellos are a few hundred bytes.
 */
export function parseInitialHello(fragment: Uint8Array): InitialHello | null {
  try {
    const frags = decodeHandshakeFragments(fragment);
    const f = frags[0];
    if (frags.length !== 1 || f.msgType !== HandshakeType.client_hello) return null;
    if (f.fragmentOffset !== 0 || f.body.length !== f.length) return null;
    const hello = decodeClientHello(f.body);
    // DTLS 1.2 or a later version offering it (the version field counts down), and null compression.
    const versionOk = hello.clientVersion <= DTLS_1_2 && hello.clientVersion >= 0xfe00;
    if (!versionOk || !hello.compressionMethods.includes(0)) return null;
    return { hello, messageSeq: f.messageSeq, body: f.body };
  } catch {
    return null;
  }
}

/**
 * The HelloVerifyRequest record. RFC 6347 §4.2.1: its server_version is DTLS 1.0 whatever is
 * negotiated later, and it reuses the ClientHello's record sequence number and message_seq.
 */
export function helloVerifyRequestRecord(
  recordSeq: number,
  messageSeq: number,
  cookie: Uint8Array,
): Uint8Array {
  const body = encodeHelloVerifyRequest({ serverVersion: DTLS_1_0, cookie });
  const message = encodeHandshakeMessage(HandshakeType.hello_verify_request, messageSeq, body);
  return sealRecord({ epoch: 0, nextSeq: recordSeq, sealer: null }, ContentType.handshake, message);
}

/** A fatal handshake_failure alert in epoch 0, for a client offering no suite we speak. */
export function handshakeFailureRecord(recordSeq: number): Uint8Array {
  const alert = Uint8Array.of(AlertLevel.fatal, AlertDescription.handshake_failure);
  return sealRecord({ epoch: 0, nextSeq: recordSeq, sealer: null }, ContentType.alert, alert);
}

/** The first of our preferred suites the client offers (server preference order). */
export function selectSuite(hello: ClientHello, preferred: number[] = DEFAULT_SUITES): AeadSuite | undefined {
  for (const id of preferred) {
    if (hello.cipherSuites.includes(id) && SUITES[id] !== undefined) return SUITES[id];
  }
  return undefined;
}
