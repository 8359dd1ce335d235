/**
 * The message codec: `encode(message) → framed bytes`, `decode(framed bytes) → message`.
 * Frame: type (u8) | payload length (u32 BE) | payload. Payloads are compact binary
 * (varint-prefixed UTF-8 strings). Both directions run the same strict validation, so a
 * sender never emits what a receiver would refuse.
 */
import { ByteReader, ByteWriter } from "./binary.ts";
import { ProtocolError } from "./errors.ts";
import {
  ERROR_CODES,
  FRAME_HEADER_BYTES,
  type HeaderLine,
  type HeadFields,
  MAX_HEADERS,
  MAX_PAYLOAD_BYTES,
  MAX_SERVICES,
  type Message,
  MessageType,
  type MessageTypeName,
  type TunnelErrorCode,
} from "./messages.ts";

const TYPE_NAMES = new Map<number, MessageTypeName>(
  Object.entries(MessageType).map(([name, byte]) => [byte, name as MessageTypeName]),
);

/** The message type name for a wire byte, or throws unknown_type. */
export function typeNameOf(byte: number): MessageTypeName {
  const name = TYPE_NAMES.get(byte);
  if (name === undefined) {
    throw new ProtocolError("unknown_type", `unknown message type 0x${byte.toString(16).padStart(2, "0")}`);
  }
  return name;
}

// RFC 9110 §5.6.2 token.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Visible ASCII, no space: request targets, hosts, ids.
const VISIBLE = /^[\x21-\x7e]+$/;
// Header values and reason phrases may not carry CR, LF or NUL (they are written raw on upgrades).
const NO_CRLF = /^[^\r\n\0]*$/;

function check(ok: boolean, what: string): void {
  if (!ok) throw new ProtocolError("invalid_field", what);
}

function validateHeaders(headers: HeaderLine[]): void {
  check(headers.length <= MAX_HEADERS, `more than ${MAX_HEADERS} headers (${headers.length})`);
  for (const [name, value] of headers) {
    check(TOKEN.test(name), `header name ${JSON.stringify(name.slice(0, 40))} is not an HTTP token`);
    check(NO_CRLF.test(value), `header ${name} has CR, LF or NUL in its value`);
  }
}

function validateHead(h: HeadFields): void {
  check(h.requestId.length > 0 && h.requestId.length <= 128 && VISIBLE.test(h.requestId), "bad requestId");
  check(h.method.length <= 32 && TOKEN.test(h.method), `method ${JSON.stringify(h.method)} is not a token`);
  check(h.path.startsWith("/") && VISIBLE.test(h.path), "path must start with / and be visible ASCII");
  check(h.proto === "http" || h.proto === "https", `proto must be http or https (got ${h.proto})`);
  check(VISIBLE.test(h.host), "host must be non-empty visible ASCII");
  check(h.remoteAddr.length <= 128 && NO_CRLF.test(h.remoteAddr), "bad remoteAddr");
  validateHeaders(h.headers);
}

/** Throws ProtocolError("invalid_field") when a message breaks a field rule. */
export function validate(m: Message): void {
  switch (m.type) {
    case "HELLO":
      check(
        Number.isInteger(m.protocolVersion) && m.protocolVersion >= 1 && m.protocolVersion <= 0xffff,
        "bad protocolVersion",
      );
      check(
        m.services.length >= 1 && m.services.length <= MAX_SERVICES,
        `services must hold 1..${MAX_SERVICES} prefixes`,
      );
      for (const s of m.services) {
        check(s.startsWith("/") && VISIBLE.test(s), `service prefix ${JSON.stringify(s)} must start with /`);
      }
      return;
    case "WELCOME":
      check(
        m.sessionId.length > 0 && m.domain.length > 0 && m.publicUrl.length > 0,
        "WELCOME fields must be non-empty",
      );
      return;
    case "REJECT":
      check(TOKEN.test(m.code), "REJECT code must be a token");
      return;
    case "GOODBYE":
      return;
    case "PING":
    case "PONG":
      check(Number.isInteger(m.seq) && m.seq >= 0 && m.seq <= 0xffffffff, "bad seq");
      return;
    case "REQUEST_HEAD":
    case "UPGRADE_HEAD":
      validateHead(m);
      return;
    case "RESPONSE_HEAD":
      check(
        Number.isInteger(m.status) && m.status >= 200 && m.status <= 599,
        `status ${m.status} not in 200..599`,
      );
      check(NO_CRLF.test(m.statusText), "statusText has CR, LF or NUL");
      validateHeaders(m.headers);
      return;
    case "ERROR":
      check((ERROR_CODES as readonly string[]).includes(m.code), `unknown ERROR code ${m.code}`);
      return;
  }
}

function writeHeaders(w: ByteWriter, headers: HeaderLine[]): void {
  w.varint(headers.length);
  for (const [n, v] of headers) w.string(n).string(v);
}

function readHeaders(r: ByteReader): HeaderLine[] {
  const count = r.varint();
  if (count > MAX_HEADERS) {
    throw new ProtocolError("too_large", `more than ${MAX_HEADERS} headers (${count})`);
  }
  const headers: HeaderLine[] = [];
  for (let i = 0; i < count; i++) headers.push([r.string(), r.string()]);
  return headers;
}

function writePayload(w: ByteWriter, m: Message): void {
  switch (m.type) {
    case "HELLO":
      w.varint(m.protocolVersion).string(m.clientVersion).varint(m.services.length);
      for (const s of m.services) w.string(s);
      return;
    case "WELCOME":
      w.string(m.sessionId).string(m.domain).string(m.publicUrl);
      return;
    case "REJECT":
      w.string(m.code).string(m.message);
      return;
    case "GOODBYE":
      w.string(m.reason);
      return;
    case "PING":
    case "PONG":
      w.varint(m.seq);
      return;
    case "REQUEST_HEAD":
    case "UPGRADE_HEAD":
      w.string(m.requestId).string(m.method).string(m.path);
      writeHeaders(w, m.headers);
      w.string(m.remoteAddr).u8(m.proto === "https" ? 1 : 0).string(m.host).u8(m.hasBody ? 1 : 0);
      return;
    case "RESPONSE_HEAD":
      w.varint(m.status).string(m.statusText);
      writeHeaders(w, m.headers);
      return;
    case "ERROR":
      w.u8(ERROR_CODES.indexOf(m.code)).string(m.message);
      return;
  }
}

function readFlag(r: ByteReader, what: string): number {
  const v = r.u8();
  if (v > 1) throw new ProtocolError("invalid_field", `${what} must be 0 or 1 (got ${v})`);
  return v;
}

function readHead(r: ByteReader): HeadFields {
  const requestId = r.string();
  const method = r.string();
  const path = r.string();
  const headers = readHeaders(r);
  const remoteAddr = r.string();
  const proto = readFlag(r, "proto") === 1 ? "https" : "http";
  const host = r.string();
  const hasBody = readFlag(r, "hasBody") === 1;
  return { requestId, method, path, headers, remoteAddr, proto, host, hasBody };
}

function readPayload(type: MessageTypeName, r: ByteReader): Message {
  switch (type) {
    case "HELLO": {
      const protocolVersion = r.varint();
      const clientVersion = r.string();
      const count = r.varint();
      if (count > MAX_SERVICES) throw new ProtocolError("too_large", `more than ${MAX_SERVICES} services`);
      const services: string[] = [];
      for (let i = 0; i < count; i++) services.push(r.string());
      return { type, protocolVersion, clientVersion, services };
    }
    case "WELCOME":
      return { type, sessionId: r.string(), domain: r.string(), publicUrl: r.string() };
    case "REJECT":
      return { type, code: r.string(), message: r.string() };
    case "GOODBYE":
      return { type, reason: r.string() };
    case "PING":
    case "PONG":
      return { type, seq: r.varint() };
    case "REQUEST_HEAD":
    case "UPGRADE_HEAD":
      return { type, ...readHead(r) };
    case "RESPONSE_HEAD":
      return { type, status: r.varint(), statusText: r.string(), headers: readHeaders(r) };
    case "ERROR": {
      const index = r.u8();
      const code: TunnelErrorCode | undefined = ERROR_CODES[index];
      if (code === undefined) throw new ProtocolError("invalid_field", `unknown ERROR code index ${index}`);
      return { type, code, message: r.string() };
    }
  }
}

/** Encodes a message's payload only (no frame header). */
export function encodePayload(m: Message): Uint8Array {
  validate(m);
  const w = new ByteWriter();
  writePayload(w, m);
  const payload = w.finish();
  if (payload.length > MAX_PAYLOAD_BYTES) {
    throw new ProtocolError(
      "too_large",
      `${m.type} payload is ${payload.length} bytes (max ${MAX_PAYLOAD_BYTES})`,
    );
  }
  return payload;
}

/** Decodes one payload of a known type; the payload must be consumed exactly. */
export function decodePayload(type: MessageTypeName, payload: Uint8Array): Message {
  if (payload.length > MAX_PAYLOAD_BYTES) {
    throw new ProtocolError(
      "too_large",
      `${type} payload is ${payload.length} bytes (max ${MAX_PAYLOAD_BYTES})`,
    );
  }
  const r = new ByteReader(payload);
  const m = readPayload(type, r);
  r.end();
  validate(m);
  return m;
}

/** Encodes one framed message: type | length (u32 BE) | payload. */
export function encode(m: Message): Uint8Array {
  const payload = encodePayload(m);
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  out[0] = MessageType[m.type];
  new DataView(out.buffer).setUint32(1, payload.length);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** Parses a frame header; throws on an unknown type or an oversized length. */
export function decodeFrameHeader(bytes: Uint8Array): { type: MessageTypeName; length: number } {
  if (bytes.length < FRAME_HEADER_BYTES) throw new ProtocolError("truncated", "frame header is 5 bytes");
  const type = typeNameOf(bytes[0]);
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(1);
  if (length > MAX_PAYLOAD_BYTES) {
    throw new ProtocolError("too_large", `${type} payload of ${length} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
  }
  return { type, length };
}

/** Decodes exactly one framed message; the bytes must hold nothing else. */
export function decode(bytes: Uint8Array): Message {
  const { type, length } = decodeFrameHeader(bytes);
  const available = bytes.length - FRAME_HEADER_BYTES;
  if (available < length) {
    throw new ProtocolError("truncated", `frame announces ${length} bytes, has ${available}`);
  }
  if (available > length) {
    throw new ProtocolError("trailing_bytes", `${available - length} bytes after the frame`);
  }
  return decodePayload(type, bytes.subarray(FRAME_HEADER_BYTES));
}
