/**
 * The TCP carrier's wire format, inside a TLS stream that negotiated ALPN "hopgate/1": frames of
 * [type u8][length u16][payload]. The client's first frame is AUTH, the server answers ACCEPT or
 * REJECT; after ACCEPT every DATA frame is one transport packet (the datagram the DTLS carrier
 * would send). Pure codecs: a decoder fed arbitrary chunks yields whole frames or throws.
 */
import { Reader } from "./bytes.ts";
import { DtlsDecodeError } from "./errors.ts";

/** The ALPN protocol id the server's HTTPS front routes to the tunnel acceptor. */
export const TUNNEL_ALPN = "hopgate/1";

export const FrameType = {
  auth: 1,
  accept: 2,
  reject: 3,
  data: 16,
} as const;

export const FRAME_HEADER_LENGTH = 3;
/** Largest frame payload; a DATA frame carries one transport packet of at most this size. */
export const MAX_FRAME_PAYLOAD = 0xffff;
/** HMAC-SHA256 output. */
export const PROOF_LENGTH = 32;

export interface Frame {
  type: number;
  payload: Uint8Array;
}

/** One frame as bytes; throws past MAX_FRAME_PAYLOAD. */
export function encodeFrame(type: number, payload: Uint8Array): Uint8Array {
  if (payload.length > MAX_FRAME_PAYLOAD) {
    throw new RangeError(`frame payload of ${payload.length} bytes exceeds ${MAX_FRAME_PAYLOAD}`);
  }
  const out = new Uint8Array(FRAME_HEADER_LENGTH + payload.length);
  out[0] = type;
  out[1] = payload.length >> 8;
  out[2] = payload.length & 0xff;
  out.set(payload, FRAME_HEADER_LENGTH);
  return out;
}

/** Reassembles frames from stream chunks of any size; frames larger than `maxPayload` throw. */
export class FrameDecoder {
  #pending: Uint8Array = new Uint8Array(0);

  constructor(readonly maxPayload = MAX_FRAME_PAYLOAD) {}

  /** Appends a chunk and returns every frame now complete (payloads are fresh copies). */
  push(chunk: Uint8Array): Frame[] {
    let buf = chunk;
    if (this.#pending.length > 0) {
      buf = new Uint8Array(this.#pending.length + chunk.length);
      buf.set(this.#pending);
      buf.set(chunk, this.#pending.length);
    }
    const frames: Frame[] = [];
    let offset = 0;
    while (buf.length - offset >= FRAME_HEADER_LENGTH) {
      const length = (buf[offset + 1] << 8) | buf[offset + 2];
      if (length > this.maxPayload) {
        throw new DtlsDecodeError(`carrier frame of ${length} bytes exceeds ${this.maxPayload}`);
      }
      const end = offset + FRAME_HEADER_LENGTH + length;
      if (end > buf.length) break;
      frames.push({ type: buf[offset], payload: buf.slice(offset + FRAME_HEADER_LENGTH, end) });
      offset = end;
    }
    this.#pending = offset === buf.length ? new Uint8Array(0) : buf.slice(offset);
    return frames;
  }

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.#pending.length;
  }
}

/** AUTH: [identity length u8][identity UTF-8][proof 32]. */
export interface AuthMessage {
  identity: string;
  proof: Uint8Array;
}

/** Encodes AUTH; identities longer than 255 UTF-8 bytes (longer than any domain) throw. */
export function encodeAuth(m: AuthMessage): Uint8Array {
  const id = new TextEncoder().encode(m.identity);
  if (id.length === 0 || id.length > 255) throw new RangeError("identity must be 1..255 bytes");
  if (m.proof.length !== PROOF_LENGTH) throw new RangeError(`proof must be ${PROOF_LENGTH} bytes`);
  const out = new Uint8Array(1 + id.length + PROOF_LENGTH);
  out[0] = id.length;
  out.set(id, 1);
  out.set(m.proof, 1 + id.length);
  return out;
}

/** Decodes AUTH or throws DtlsDecodeError. */
export function decodeAuth(payload: Uint8Array): AuthMessage {
  const r = new Reader(payload, "AUTH");
  const n = r.u8();
  if (n === 0) throw new DtlsDecodeError("AUTH: empty identity");
  const identity = new TextDecoder("utf-8", { fatal: true }).decode(r.bytes(n));
  const proof = r.bytes(PROOF_LENGTH).slice();
  if (r.remaining !== 0) throw new DtlsDecodeError(`AUTH: ${r.remaining} trailing bytes`);
  return { identity, proof };
}

/** Why the server refused a carrier; `key` is the PSK check (the DTLS auth alerts' equivalent). */
export type RejectCode = "key" | "busy" | "protocol";
const REJECT_CODES: RejectCode[] = ["key", "busy", "protocol"];

/** REJECT: [code u8][message UTF-8]. */
export function encodeReject(code: RejectCode, message: string): Uint8Array {
  const text = new TextEncoder().encode(message.slice(0, 500));
  const out = new Uint8Array(1 + text.length);
  out[0] = REJECT_CODES.indexOf(code);
  out.set(text, 1);
  return out;
}

/** Decodes REJECT; unknown codes read as "protocol". */
export function decodeReject(payload: Uint8Array): { code: RejectCode; message: string } {
  if (payload.length === 0) throw new DtlsDecodeError("REJECT: empty");
  const code = REJECT_CODES[payload[0]] ?? "protocol";
  return { code, message: new TextDecoder().decode(payload.subarray(1)) };
}
