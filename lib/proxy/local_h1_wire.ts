/**
 * HTTP/1.1 request framing as bytes for the lean local client: the request head in one Uint8Array,
 * chunk headers and the last chunk with its trailers. Byte strings go out byte for byte; what
 * node:http would refuse to write is refused here too (same character rules), before anything is sent.
 */
import type { HeaderLine } from "../protocol/body.ts";

// RFC 9110 §5.6.2 tchar.
const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TOKEN[c.charCodeAt(0)] = 1;
}
// node's checkInvalidHeaderChar: HTAB, SP..~, and obs-text 0x80..0xff.
const FIELD_VALUE = new Uint8Array(256);
FIELD_VALUE[9] = 1;
for (let c = 0x20; c <= 0xff; c++) FIELD_VALUE[c] = c === 0x7f ? 0 : 1;
// node's INVALID_PATH_REGEX: a request-target is 0x21..0xff (no space, no control character).
const TARGET = new Uint8Array(256);
for (let c = 0x21; c <= 0xff; c++) TARGET[c] = 1;

/** Writes byte string `s` at `pos` if every char is allowed by `table`; returns the next position, or -1. */
function put(out: Uint8Array, pos: number, s: string, table: Uint8Array): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || table[c] === 0) return -1;
    out[pos++] = c;
  }
  return pos;
}

/** Writes a literal ASCII string at `pos`; returns the next position. */
function lit(out: Uint8Array, pos: number, s: string): number {
  for (let i = 0; i < s.length; i++) out[pos++] = s.charCodeAt(i);
  return pos;
}

/** Writes `name: value\r\n` lines from a flat [n1, v1, …] array; throws a TypeError naming the bad line. */
function putLines(out: Uint8Array, pos: number, flat: readonly string[]): number {
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i];
    const p = name.length === 0 ? -1 : put(out, pos, name, TOKEN);
    if (p < 0) throw new TypeError(`header name ${JSON.stringify(name)} is not an HTTP token`);
    pos = lit(out, p, ": ");
    const q = put(out, pos, flat[i + 1], FIELD_VALUE);
    if (q < 0) throw new TypeError(`header ${JSON.stringify(name)} has an invalid character in its value`);
    pos = lit(out, q, "\r\n");
  }
  return pos;
}

function linesLength(flat: readonly string[]): number {
  let n = 0;
  for (let i = 0; i + 1 < flat.length; i += 2) n += flat[i].length + flat[i + 1].length + 4;
  return n;
}

/**
 * `METHOD target HTTP/1.1`, the header lines of `flat` ([n1, v1, …], written as given), then
 * `Connection: keep-alive` unless a Connection line is among them. Throws a TypeError (nothing sent)
 * when the method, target, a name or a value has a character HTTP/1.1 cannot carry.
 */
export function encodeRequestHead(method: string, target: string, flat: readonly string[]): Uint8Array {
  let hasConnection = false;
  for (let i = 0; i < flat.length; i += 2) {
    if (flat[i].length === 10 && flat[i].toLowerCase() === "connection") hasConnection = true;
  }
  const keepAlive = hasConnection ? "" : "Connection: keep-alive\r\n";
  const out = new Uint8Array(
    method.length + target.length + 12 + linesLength(flat) + keepAlive.length + 2,
  );
  let pos = method.length === 0 ? -1 : put(out, 0, method, TOKEN);
  if (pos < 0) throw new TypeError(`method ${JSON.stringify(method)} is not an HTTP token`);
  pos = lit(out, pos, " ");
  pos = target.length === 0 ? -1 : put(out, pos, target, TARGET);
  if (pos < 0) throw new TypeError(`request target ${JSON.stringify(target)} contains unescaped characters`);
  pos = lit(out, pos, " HTTP/1.1\r\n");
  pos = putLines(out, pos, flat);
  pos = lit(out, pos, keepAlive);
  pos = lit(out, pos, "\r\n");
  return out;
}

/** The line before a chunk of `size` bytes (size > 0): hex size, CRLF. */
export function chunkHeader(size: number): Uint8Array {
  return out(size.toString(16) + "\r\n");
}

/** An ASCII string's bytes. */
function out(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  lit(b, 0, s);
  return b;
}

/** The CRLF after a chunk's bytes. */
export const CHUNK_END: Uint8Array = out("\r\n");

/** The last chunk, its trailer lines and the final CRLF; throws a TypeError on a line HTTP/1.1 cannot carry. */
export function lastChunk(trailers: readonly HeaderLine[] | null): Uint8Array {
  const flat: string[] = [];
  for (const [name, value] of trailers ?? []) flat.push(name, value);
  const bytes = new Uint8Array(3 + linesLength(flat) + 2);
  let pos = lit(bytes, 0, "0\r\n");
  pos = putLines(bytes, pos, flat);
  lit(bytes, pos, "\r\n");
  return bytes;
}
