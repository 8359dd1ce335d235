/**
 * Chunked transfer coding (RFC 9112 §7.1): an incremental decoder that hands out body bytes and
 * the trailer section, and the encoder's framing pieces. Strict: hex sizes only, bounded
 * extensions and trailers, CRLF everywhere.
 */
import { type HeaderLine, latin1String } from "../../protocol/body.ts";
import { HttpError } from "./errors.ts";
import { parseFieldLine } from "./request_head.ts";

const CR = 13;
const LF = 10;
const enum S {
  Size,
  SizeWs,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  Trailer,
  Done,
}

export interface ChunkedLimits {
  /** Bytes of chunk extensions per chunk line. */
  maxExtensionBytes: number;
  /** Bytes of the whole trailer section. */
  maxTrailerBytes: number;
}

const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX["0123456789abcdef".charCodeAt(i)] = i;
  HEX["0123456789ABCDEF".charCodeAt(i)] = i;
}

/** Decodes one chunked body; feed bytes, get data chunks (subarrays of the input) and trailers. */
export class ChunkedDecoder {
  #state = S.Size;
  #size = 0;
  #digits = 0;
  #ext = 0;
  #remaining = 0;
  #trailer: number[] = [];
  #trailerBytes = 0;

  constructor(
    private readonly limits: ChunkedLimits,
    private readonly onData: (chunk: Uint8Array) => void,
    private readonly onEnd: (trailers: HeaderLine[] | null) => void,
  ) {}

  get done(): boolean {
    return this.#state === S.Done;
  }

  /**
   * Consumes bytes from buf[from, end); returns the index where it stopped: `end`, or just past
   * the body when it ended there (the rest belongs to the next message). Throws HttpError(400).
   */
  feed(buf: Uint8Array, from: number, end: number): number {
    let i = from;
    while (i < end) {
      const c = buf[i];
      switch (this.#state) {
        case S.Size: {
          const h = HEX[c];
          if (h >= 0) {
            if (++this.#digits > 13) throw new HttpError(400, "chunk size overflow");
            this.#size = this.#size * 16 + h;
            i++;
            break;
          }
          if (this.#digits === 0) throw new HttpError(400, "chunk size without hex digits");
          if (c === CR) this.#state = S.SizeLf;
          else if (c === 59) this.#state = S.Ext;
          else if (c === 32 || c === 9) this.#state = S.SizeWs;
          else throw new HttpError(400, "invalid byte after chunk size");
          i++;
          break;
        }
        case S.SizeWs:
          if (c === 59) this.#state = S.Ext;
          else if (c !== 32 && c !== 9) {
            throw new HttpError(400, "whitespace after chunk size without extension");
          }
          i++;
          break;
        case S.Ext:
          if (c === CR) this.#state = S.SizeLf;
          else if ((c < 32 && c !== 9) || c === 0x7f) {
            throw new HttpError(400, "control byte in chunk extension");
          } else if (++this.#ext > this.limits.maxExtensionBytes) {
            throw new HttpError(400, "chunk extensions too long");
          }
          i++;
          break;
        case S.SizeLf:
          if (c !== LF) throw new HttpError(400, "chunk size line without CRLF");
          i++;
          this.#ext = 0;
          this.#digits = 0;
          if (this.#size === 0) {
            this.#state = S.Trailer;
          } else {
            this.#remaining = this.#size;
            this.#size = 0;
            this.#state = S.Data;
          }
          break;
        case S.Data: {
          const n = Math.min(this.#remaining, end - i);
          this.onData(buf.subarray(i, i + n));
          this.#remaining -= n;
          i += n;
          if (this.#remaining === 0) this.#state = S.DataCr;
          break;
        }
        case S.DataCr:
          if (c !== CR) throw new HttpError(400, "chunk data longer than its size");
          this.#state = S.DataLf;
          i++;
          break;
        case S.DataLf:
          if (c !== LF) throw new HttpError(400, "chunk data without CRLF");
          this.#state = S.Size;
          i++;
          break;
        case S.Trailer: {
          i++;
          if (++this.#trailerBytes > this.limits.maxTrailerBytes) {
            throw new HttpError(431, "trailer section too large");
          }
          const t = this.#trailer;
          const prev = t.length > 0 ? t[t.length - 1] : -1;
          if (prev === CR && c !== LF) throw new HttpError(400, "bare CR in trailers");
          if (c === LF && prev !== CR) throw new HttpError(400, "bare LF in trailers");
          t.push(c);
          if (c === LF && (t.length === 2 || (t[t.length - 3] === LF && t[t.length - 4] === CR))) {
            this.#state = S.Done;
            this.onEnd(parseTrailers(t));
            return i;
          }
          break;
        }
        case S.Done:
          return i;
      }
    }
    return i;
  }
}

function parseTrailers(bytes: number[]): HeaderLine[] | null {
  if (bytes.length === 2) return null;
  const s = latin1String(Uint8Array.from(bytes.slice(0, bytes.length - 2)));
  const lines: HeaderLine[] = [];
  let pos = 0;
  while (pos < s.length) {
    const eol = s.indexOf("\r\n", pos);
    if (s.charCodeAt(pos) === 32 || s.charCodeAt(pos) === 9) throw new HttpError(400, "obs-fold in trailers");
    lines.push(parseFieldLine(s, pos, eol));
    pos = eol + 2;
  }
  return lines;
}

/** The size line that precedes a chunk of n > 0 bytes. */
export function chunkHeader(n: number): string {
  return n.toString(16) + "\r\n";
}

/** The last chunk and the trailer section that end a chunked body. */
export function lastChunk(trailers: HeaderLine[] | null | undefined): string {
  let s = "0\r\n";
  if (trailers) { for (const [n, v] of trailers) if (validLine(n, v)) s += n + ": " + v + "\r\n"; }
  return s + "\r\n";
}

/** A field line is safe to write: no CR, LF or NUL that would split the message, non-empty name. */
export function validLine(name: string, value: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 32 || c === 58 || c > 126) return false;
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 13 || c === 10 || c === 0 || c > 255) return false;
  }
  return true;
}
