/**
 * HTTP/1.1 request heads (RFC 9112 §3, §5, §6): bytes in, a typed head out, strict where a lenient
 * reading would let a request be framed differently by us and by the origin (request smuggling).
 */
import type { HeaderLine } from "../../protocol/body.ts";
import { HttpError } from "./errors.ts";

export interface HeadLimits {
  /** Request line + header lines + the blank line, in bytes. */
  maxHeadBytes: number;
  /** The request-target, in bytes. */
  maxTargetBytes: number;
  /** Header lines. */
  maxHeaderLines: number;
}

export const DEFAULT_HEAD_LIMITS: HeadLimits = {
  maxHeadBytes: 128 * 1024,
  maxTargetBytes: 16 * 1024,
  maxHeaderLines: 1000,
};

export type BodyFraming = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" };

export interface RequestHead {
  method: string;
  /** The request-target as a byte string, exactly as sent. */
  target: string;
  version: "1.0" | "1.1";
  headers: HeaderLine[];
  /** The Host value ("" when absent, HTTP/1.0 only). */
  host: string;
  framing: BodyFraming;
  /** Content-Length when declared. */
  contentLength: number | undefined;
  /** The client wants the connection kept after this exchange. */
  keepAlive: boolean;
  expectContinue: boolean;
  /** `Connection: upgrade` with an `Upgrade` header. */
  upgrade: boolean;
}

const CR = 13;
const LF = 10;

/** tchar (RFC 9110 §5.6.2) as a lookup table. */
export const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TOKEN[c.charCodeAt(0)] = 1;
}

/**
 * Finds the end of a head in buf[from, end): the index just past the blank line, or -1 when more
 * bytes are needed (call again with `scanned` = the previous `end`). A bare LF is a 400; a head or
 * request line longer than the limits is a 431/414.
 */
export function locateHead(
  buf: Uint8Array,
  from: number,
  end: number,
  scanned: number,
  limits: HeadLimits,
): number {
  for (let i = Math.max(from, scanned); i < end; i++) {
    if (buf[i] !== LF) continue;
    if (i === from || buf[i - 1] !== CR) throw new HttpError(400, "bare LF in the request head");
    if (i >= from + 3 && buf[i - 2] === LF && buf[i - 3] === CR) {
      if (i + 1 - from > limits.maxHeadBytes) {
        throw new HttpError(431, `request head over ${limits.maxHeadBytes} bytes`);
      }
      return i + 1;
    }
  }
  const size = end - from;
  if (size > limits.maxHeadBytes) throw new HttpError(431, `request head over ${limits.maxHeadBytes} bytes`);
  if (size > limits.maxTargetBytes + 64) {
    const lf = buf.indexOf(LF, from);
    if (lf === -1 || lf >= end) throw new HttpError(414, "request line too long");
  }
  return -1;
}

/** Parses a complete head (the bytes up to and including the blank line). */
export function parseRequestHead(head: string, limits: HeadLimits = DEFAULT_HEAD_LIMITS): RequestHead {
  const lineEnd = head.indexOf("\r\n");
  const { method, target, version } = parseRequestLine(head.slice(0, lineEnd), limits);
  const headers: HeaderLine[] = [];
  let pos = lineEnd + 2;
  const stop = head.length - 2;
  while (pos < stop) {
    const eol = head.indexOf("\r\n", pos);
    headers.push(parseFieldLine(head, pos, eol));
    if (headers.length > limits.maxHeaderLines) throw new HttpError(431, "too many header lines");
    pos = eol + 2;
  }
  return interpret(method, target, version, headers);
}

function parseRequestLine(line: string, limits: HeadLimits) {
  const sp1 = line.indexOf(" ");
  const sp2 = line.lastIndexOf(" ");
  if (sp1 <= 0 || sp2 === sp1) throw new HttpError(400, "malformed request line");
  const method = line.slice(0, sp1);
  for (let i = 0; i < method.length; i++) {
    if (!TOKEN[method.charCodeAt(i)]) throw new HttpError(400, "method is not a token");
  }
  const target = line.slice(sp1 + 1, sp2);
  if (target.length === 0) throw new HttpError(400, "empty request-target");
  if (target.length > limits.maxTargetBytes) throw new HttpError(414, "request-target too long");
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    // Any visible byte, raw UTF-8 included: a proxy carries the target as sent.
    if (c < 0x21 || c === 0x7f) throw new HttpError(400, "invalid byte in request-target");
  }
  const v = line.slice(sp2 + 1);
  if (v === "HTTP/1.1") return { method, target, version: "1.1" as const };
  if (v === "HTTP/1.0") return { method, target, version: "1.0" as const };
  if (/^HTTP\/\d\.\d$/.test(v)) throw new HttpError(505, `unsupported version ${v}`);
  throw new HttpError(400, "malformed HTTP-version");
}

/** One field line `name: value` (RFC 9112 §5): no whitespace before the colon, no obs-fold. */
export function parseFieldLine(s: string, start: number, end: number): HeaderLine {
  const colon = s.indexOf(":", start);
  if (colon <= start || colon >= end) {
    throw new HttpError(
      400,
      s.charCodeAt(start) <= 32 ? "obs-fold or leading whitespace" : "field line without colon",
    );
  }
  for (let i = start; i < colon; i++) {
    if (!TOKEN[s.charCodeAt(i)]) throw new HttpError(400, "field name is not a token");
  }
  let a = colon + 1;
  let b = end;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  for (let i = a; i < b; i++) {
    const c = s.charCodeAt(i);
    if ((c < 32 && c !== 9) || c === 0x7f) throw new HttpError(400, "control byte in a field value");
  }
  return [s.slice(start, colon), s.slice(a, b)];
}

function listTokens(value: string): string[] {
  return value.split(",").map((t) => t.trim().toLowerCase()).filter((t) => t.length > 0);
}

const HOST_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:%\[\]]*$/;

function interpret(
  method: string,
  target: string,
  version: "1.0" | "1.1",
  headers: HeaderLine[],
): RequestHead {
  let host: string | undefined;
  let contentLength: number | undefined;
  let te: string[] | undefined;
  let connection: string[] = [];
  let expectContinue = false;
  let hasUpgrade = false;
  for (const [name, value] of headers) {
    switch (name.length) {
      case 4:
        if (name.toLowerCase() !== "host") break;
        if (host !== undefined) throw new HttpError(400, "more than one Host");
        if (!HOST_CHARS.test(value)) throw new HttpError(400, "invalid Host");
        host = value;
        break;
      case 14:
        if (name.toLowerCase() !== "content-length") break;
        if (contentLength !== undefined) throw new HttpError(400, "more than one Content-Length");
        if (!/^\d{1,15}$/.test(value)) throw new HttpError(400, "invalid Content-Length");
        contentLength = Number(value);
        break;
      case 17:
        if (name.toLowerCase() !== "transfer-encoding") break;
        te = (te ?? []).concat(value.split(",").map((t) => t.trim().toLowerCase()));
        break;
      case 10:
        if (name.toLowerCase() === "connection") connection = connection.concat(listTokens(value));
        break;
      case 6:
        if (name.toLowerCase() === "expect" && value.toLowerCase() === "100-continue") expectContinue = true;
        break;
      case 7:
        if (name.toLowerCase() === "upgrade" && value.length > 0) hasUpgrade = true;
        break;
    }
  }
  if (version === "1.1" && host === undefined) throw new HttpError(400, "HTTP/1.1 request without Host");
  // RFC 9112 §3.2.2: an absolute-form target's authority wins over Host.
  const absolute = /^https?:\/\/([^/?#]*)/i.exec(target);
  if (absolute) {
    if (!HOST_CHARS.test(absolute[1])) throw new HttpError(400, "invalid authority in the request-target");
    host = absolute[1];
  }
  let framing: BodyFraming = { kind: "none" };
  if (te !== undefined) {
    if (contentLength !== undefined) throw new HttpError(400, "both Content-Length and Transfer-Encoding");
    if (version === "1.0") throw new HttpError(400, "Transfer-Encoding on HTTP/1.0");
    for (let i = 0; i < te.length; i++) {
      const t = te[i];
      if (t === "chunked" && i === te.length - 1) continue;
      if (t === "chunked" || t === "" || ![...t].every((c) => TOKEN[c.charCodeAt(0)])) {
        throw new HttpError(400, "Transfer-Encoding must end with a single chunked");
      }
      throw new HttpError(501, `unknown transfer-coding ${t}`);
    }
    framing = { kind: "chunked" };
  } else if (contentLength !== undefined && contentLength > 0) {
    framing = { kind: "length", length: contentLength };
  }
  const close = connection.includes("close");
  return {
    method,
    target,
    version,
    headers,
    host: host ?? "",
    framing,
    contentLength,
    keepAlive: !close && (version === "1.1" || connection.includes("keep-alive")),
    expectContinue: expectContinue && version === "1.1" && framing.kind !== "none",
    upgrade: hasUpgrade && connection.includes("upgrade") && version === "1.1",
  };
}
