/**
 * The message codec: `encode(message) → framed bytes`, `decode(framed bytes) → message`.
 * Frame: type (u8) | payload length (u32 BE) | payload. Payloads are compact binary: varint-prefixed
 * UTF-8 strings for the tunnel's own fields, varint-prefixed byte strings for what HTTP carries (method,
 * request target, header lines, reason phrase), so every byte the browser or the origin sent crosses
 * unchanged. DATA's payload is the body bytes. Both directions run the same strict validation, so a
 * sender never emits what a receiver would refuse.
 */
import { ByteReader, ByteWriter } from "./binary.ts";
import { ProtocolError } from "./errors.ts";
import {
  ERROR_CODES,
  FRAME_HEADER_BYTES,
  type HeaderLine,
  type HeadFields,
  MAX_DATA_BYTES,
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
// Visible ASCII, no space: hosts, ids.
const VISIBLE = /^[\x21-\x7e]+$/;
// A request-target as bytes: no controls, space or DEL; bytes 0x80-0xff (raw UTF-8) pass as they came.
const TARGET = /^[\x21-\x7e\x80-\xff]+$/;
// Header values and reason phrases may not carry CR, LF or NUL (they are written raw on upgrades).
const NO_CRLF = /^[^\r\n\0]*$/;

function check(ok: boolean, what: string): void {
  if (!ok) fail(what);
}

function fail(what: string): never {
  throw new ProtocolError("invalid_field", what);
}

// The hot checks (every header of every head) build their message only when they fail.
function validateHeaders(headers: HeaderLine[]): void {
  if (headers.length > MAX_HEADERS) fail(`more than ${MAX_HEADERS} headers (${headers.length})`);
  for (const [name, value] of headers) {
    if (!TOKEN.test(name)) fail(`header name ${JSON.stringify(name.slice(0, 40))} is not an HTTP token`);
    if (!NO_CRLF.test(value)) fail(`header ${name} has CR, LF or NUL in its value`);
  }
}

function validateHead(h: HeadFields): void {
  check(h.requestId.length > 0 && h.requestId.length <= 128 && VISIBLE.test(h.requestId), "bad requestId");
  if (h.method.length > 32 || !TOKEN.test(h.method)) {
    fail(`method ${JSON.stringify(h.method)} is not a token`);
  }
  check(TARGET.test(h.target), "target must be visible bytes (no space or control)");
  if (h.proto !== "http" && h.proto !== "https") fail(`proto must be http or https (got ${h.proto})`);
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
      if (!Number.isInteger(m.status) || (m.status !== 101 && (m.status < 200 || m.status > 599))) {
        fail(`status ${m.status} is neither 101 nor in 200..599`);
      }
      check(NO_CRLF.test(m.statusText), "statusText has CR, LF or NUL");
      validateHeaders(m.headers);
      return;
    case "DATA":
      return;
    case "TRAILERS":
      validateHeaders(m.trailers);
      return;
    case "ERROR":
      check((ERROR_CODES as readonly string[]).includes(m.code), `unknown ERROR code ${m.code}`);
      return;
  }
}

function writeHeaders(w: ByteWriter, headers: HeaderLine[]): void {
  w.varint(headers.length);
  for (const [n, v] of headers) w.byteString(n).byteString(v);
}

function readHeaders(r: ByteReader): HeaderLine[] {
  const count = r.varint();
  if (count > MAX_HEADERS) {
    throw new ProtocolError("too_large", `more than ${MAX_HEADERS} headers (${count})`);
  }
  const headers: HeaderLine[] = [];
  for (let i = 0; i < count; i++) headers.push([r.byteString(), r.byteString()]);
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
      w.string(m.requestId).byteString(m.method).byteString(m.target);
      writeHeaders(w, m.headers);
      w.string(m.remoteAddr).u8(m.proto === "https" ? 1 : 0).string(m.host).u8(m.hasBody ? 1 : 0);
      return;
    case "RESPONSE_HEAD":
      w.varint(m.status).byteString(m.statusText);
      writeHeaders(w, m.headers);
      return;
    case "DATA":
      w.bytes(m.data);
      return;
    case "TRAILERS":
      writeHeaders(w, m.trailers);
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
  const method = r.byteString();
  const target = r.byteString();
  const headers = readHeaders(r);
  const remoteAddr = r.string();
  const proto = readFlag(r, "proto") === 1 ? "https" : "http";
  const host = r.string();
  const hasBody = readFlag(r, "hasBody") === 1;
  return { requestId, method, target, headers, remoteAddr, proto, host, hasBody };
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
      return { type, status: r.varint(), statusText: r.byteString(), headers: readHeaders(r) };
    case "DATA": {
      const data = r.buf.subarray(r.buf.length - r.remaining);
      r.skip(data.length);
      return { type, data };
    }
    case "TRAILERS":
      return { type, trailers: readHeaders(r) };
    case "ERROR": {
      const index = r.u8();
      const code: TunnelErrorCode | undefined = ERROR_CODES[index];
      if (code === undefined) throw new ProtocolError("invalid_field", `unknown ERROR code index ${index}`);
      return { type, code, message: r.string() };
    }
  }
}

/** The largest payload a message of this type may have. */
export function maxPayloadOf(type: MessageTypeName): number {
  return type === "DATA" ? MAX_DATA_BYTES : MAX_PAYLOAD_BYTES;
}

/**
 * The writer every message is encoded with: encoding is synchronous and ends in a copy (finish), so one
 * buffer serves them all, where a fresh one per message was an ArrayBuffer allocation each.
 */
const scratch = new ByteWriter();

/** Encodes a message's payload only (no frame header). */
export function encodePayload(m: Message): Uint8Array {
  validate(m);
  const w = scratch.reset();
  writePayload(w, m);
  const payload = w.finish();
  if (payload.length > maxPayloadOf(m.type)) {
    throw new ProtocolError(
      "too_large",
      `${m.type} payload is ${payload.length} bytes (max ${maxPayloadOf(m.type)})`,
    );
  }
  return payload;
}

/** Decodes one payload of a known type; the payload must be consumed exactly. */
export function decodePayload(type: MessageTypeName, payload: Uint8Array): Message {
  if (payload.length > maxPayloadOf(type)) {
    throw new ProtocolError(
      "too_large",
      `${type} payload is ${payload.length} bytes (max ${maxPayloadOf(type)})`,
    );
  }
  const r = new ByteReader(payload);
  const m = readPayload(type, r);
  r.end();
  validate(m);
  return m;
}

/** Encodes one framed message: type | length (u32 BE) | payload, built in one buffer. */
export function encode(m: Message): Uint8Array {
  validate(m);
  const w = scratch.reset();
  w.bytes(FRAME_PLACEHOLDER);
  writePayload(w, m);
  const out = w.finish();
  const length = out.length - FRAME_HEADER_BYTES;
  if (length > maxPayloadOf(m.type)) {
    throw new ProtocolError(
      "too_large",
      `${m.type} payload is ${length} bytes (max ${maxPayloadOf(m.type)})`,
    );
  }
  writeFrameHeader(out, MessageType[m.type], length);
  return out;
}

const FRAME_PLACEHOLDER = new Uint8Array(FRAME_HEADER_BYTES);

/** Writes a frame header (type, payload length) into the first 5 bytes of `out`. */
export function writeFrameHeader(out: Uint8Array, type: number, length: number): void {
  out[0] = type;
  out[1] = length >>> 24;
  out[2] = (length >>> 16) & 0xff;
  out[3] = (length >>> 8) & 0xff;
  out[4] = length & 0xff;
}

/** Parses a frame header; throws on an unknown type or an oversized length. */
export function decodeFrameHeader(bytes: Uint8Array): { type: MessageTypeName; length: number } {
  if (bytes.length < FRAME_HEADER_BYTES) throw new ProtocolError("truncated", "frame header is 5 bytes");
  const type = typeNameOf(bytes[0]);
  const length = ((bytes[1] << 24) >>> 0) + (bytes[2] << 16) + (bytes[3] << 8) + bytes[4];
  if (length > maxPayloadOf(type)) {
    throw new ProtocolError("too_large", `${type} payload of ${length} bytes exceeds ${maxPayloadOf(type)}`);
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
