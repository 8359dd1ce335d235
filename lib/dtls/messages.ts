/**
 * Handshake messages (RFC 6347 §4.2.2, RFC 5246 §7.4, RFC 4279 §2): the 12-byte DTLS handshake
 * header and the bodies the PSK handshake uses. Pure codecs: decode throws DtlsDecodeError.
 */
import { Reader, Writer } from "./bytes.ts";
import { DtlsDecodeError } from "./errors.ts";

export const HANDSHAKE_HEADER_LENGTH = 12;

/** One handshake fragment as carried in a record; a whole message has offset 0 and body.length === length. */
export interface HandshakeFragment {
  msgType: number;
  /** Length of the whole message body. */
  length: number;
  messageSeq: number;
  fragmentOffset: number;
  body: Uint8Array;
}

/** Decodes every handshake fragment in a record's plaintext (a record may carry several). */
export function decodeHandshakeFragments(fragment: Uint8Array): HandshakeFragment[] {
  const r = new Reader(fragment, "handshake fragment");
  const out: HandshakeFragment[] = [];
  while (r.remaining > 0) {
    const msgType = r.u8();
    const length = r.u24();
    const messageSeq = r.u16();
    const fragmentOffset = r.u24();
    const fragmentLength = r.u24();
    if (fragmentOffset + fragmentLength > length) {
      throw new DtlsDecodeError(
        `handshake fragment ${fragmentOffset}+${fragmentLength} exceeds message length ${length}`,
      );
    }
    out.push({ msgType, length, messageSeq, fragmentOffset, body: r.bytes(fragmentLength) });
  }
  return out;
}

export function encodeHandshakeFragment(f: HandshakeFragment): Uint8Array {
  if (f.fragmentOffset + f.body.length > f.length) throw new DtlsDecodeError("fragment exceeds its message");
  return new Writer().u8(f.msgType).u24(f.length).u16(f.messageSeq).u24(f.fragmentOffset).vector(3, f.body)
    .finish();
}

/** A whole message as hashed into the transcript (RFC 6347 §4.2.6: as if sent unfragmented). */
export function encodeHandshakeMessage(msgType: number, messageSeq: number, body: Uint8Array): Uint8Array {
  return encodeHandshakeFragment({ msgType, length: body.length, messageSeq, fragmentOffset: 0, body });
}

/** Splits a message into fragments whose bodies are at most `maxBody` bytes (RFC 6347 §4.2.3). */
export function fragmentHandshakeMessage(
  msgType: number,
  messageSeq: number,
  body: Uint8Array,
  maxBody: number,
): Uint8Array[] {
  if (maxBody < 1) throw new RangeError("maxBody must be positive");
  const out: Uint8Array[] = [];
  let offset = 0;
  do {
    const piece = body.subarray(offset, offset + maxBody);
    out.push(
      encodeHandshakeFragment({
        msgType,
        length: body.length,
        messageSeq,
        fragmentOffset: offset,
        body: piece,
      }),
    );
    offset += piece.length;
  } while (offset < body.length);
  return out;
}

export interface Extension {
  type: number;
  data: Uint8Array;
}

export interface ClientHello {
  clientVersion: number;
  random: Uint8Array;
  sessionId: Uint8Array;
  cookie: Uint8Array;
  cipherSuites: number[];
  compressionMethods: Uint8Array;
  extensions: Extension[];
}

export function decodeClientHello(body: Uint8Array): ClientHello {
  const r = new Reader(body, "ClientHello");
  const clientVersion = r.u16();
  const random = r.bytes(32);
  const sessionId = r.vector(1, 0, 32);
  const cookie = r.vector(1, 0, 255);
  const suites = r.vector(2, 2, 0xfffe);
  if (suites.length % 2 !== 0) throw new DtlsDecodeError("ClientHello: odd cipher_suites length");
  const cipherSuites: number[] = [];
  for (let i = 0; i < suites.length; i += 2) cipherSuites.push((suites[i] << 8) | suites[i + 1]);
  const compressionMethods = r.vector(1, 1, 255);
  const extensions = r.remaining > 0 ? decodeExtensions(r.vector(2)) : [];
  r.end();
  return { clientVersion, random, sessionId, cookie, cipherSuites, compressionMethods, extensions };
}

export function encodeClientHello(h: ClientHello): Uint8Array {
  const suites = new Writer();
  for (const s of h.cipherSuites) suites.u16(s);
  const w = new Writer().u16(h.clientVersion).bytes(h.random).vector(1, h.sessionId).vector(1, h.cookie)
    .vector(2, suites.finish()).vector(1, h.compressionMethods);
  if (h.extensions.length > 0) w.vector(2, encodeExtensions(h.extensions));
  return w.finish();
}

function decodeExtensions(bytes: Uint8Array): Extension[] {
  const r = new Reader(bytes, "extensions");
  const out: Extension[] = [];
  while (r.remaining > 0) out.push({ type: r.u16(), data: r.vector(2) });
  return out;
}

function encodeExtensions(exts: Extension[]): Uint8Array {
  const w = new Writer();
  for (const e of exts) w.u16(e.type).vector(2, e.data);
  return w.finish();
}

export interface HelloVerifyRequest {
  serverVersion: number;
  cookie: Uint8Array;
}

export function encodeHelloVerifyRequest(h: HelloVerifyRequest): Uint8Array {
  return new Writer().u16(h.serverVersion).vector(1, h.cookie).finish();
}

export function decodeHelloVerifyRequest(body: Uint8Array): HelloVerifyRequest {
  const r = new Reader(body, "HelloVerifyRequest");
  const v = { serverVersion: r.u16(), cookie: r.vector(1, 0, 255) };
  r.end();
  return v;
}

export interface ServerHello {
  serverVersion: number;
  random: Uint8Array;
  sessionId: Uint8Array;
  cipherSuite: number;
  compressionMethod: number;
  extensions: Extension[];
}

export function encodeServerHello(h: ServerHello): Uint8Array {
  const w = new Writer().u16(h.serverVersion).bytes(h.random).vector(1, h.sessionId).u16(h.cipherSuite)
    .u8(h.compressionMethod);
  if (h.extensions.length > 0) w.vector(2, encodeExtensions(h.extensions));
  return w.finish();
}

export function decodeServerHello(body: Uint8Array): ServerHello {
  const r = new Reader(body, "ServerHello");
  const serverVersion = r.u16();
  const random = r.bytes(32);
  const sessionId = r.vector(1, 0, 32);
  const cipherSuite = r.u16();
  const compressionMethod = r.u8();
  const extensions = r.remaining > 0 ? decodeExtensions(r.vector(2)) : [];
  r.end();
  return { serverVersion, random, sessionId, cipherSuite, compressionMethod, extensions };
}

/** RFC 4279 §2: ServerKeyExchange carries only the identity hint; ClientKeyExchange only the identity. */
export function encodePskIdentity(identity: Uint8Array): Uint8Array {
  return new Writer().vector(2, identity).finish();
}

export function decodePskIdentity(body: Uint8Array, what: string): Uint8Array {
  const r = new Reader(body, what);
  const identity = r.vector(2, 0, 0xffff);
  r.end();
  return identity;
}

/** Finished carries verify_data, 12 bytes for every suite we speak (RFC 5246 §7.4.9). */
export function decodeFinished(body: Uint8Array): Uint8Array {
  if (body.length !== 12) {
    throw new DtlsDecodeError(`Finished: verify_data is ${body.length} bytes, expected 12`);
  }
  return body;
}
