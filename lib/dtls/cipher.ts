/**
 * AEAD record protection for DTLS 1.2 (RFC 5246 §6.2.3.3): AES-128-GCM (RFC 5288). AES-128-CCM-8
 * (RFC 6655) is not offered: Deno's node:crypto has no CCM mode. The nonce is the 4-byte implicit salt followed by the 8-byte explicit
 * part sent in the record; we use epoch|sequence as the explicit part, which never repeats under
 * one key. Nonce and additional data are built in place in buffers owned by the sealer/opener.
 */
import { type GcmKey, newGcmKey } from "./aead.ts";
import { RECORD_HEADER_LENGTH, type RecordHeader, writeRecordHeader, writeUint48 } from "./record.ts";
import { CipherSuiteId } from "./constants.ts";

export type AeadAlgorithm = "aes-128-gcm";

export interface AeadSuite {
  id: number;
  name: string;
  algorithm: AeadAlgorithm;
  tagLength: number;
}

export const SUITES: Record<number, AeadSuite> = {
  [CipherSuiteId.TLS_PSK_WITH_AES_128_GCM_SHA256]: {
    id: CipherSuiteId.TLS_PSK_WITH_AES_128_GCM_SHA256,
    name: "TLS_PSK_WITH_AES_128_GCM_SHA256",
    algorithm: "aes-128-gcm",
    tagLength: 16,
  },
};

/** Bytes a protected record adds to its plaintext: header, explicit nonce, tag. */
export function recordOverhead(suite: AeadSuite): number {
  return RECORD_HEADER_LENGTH + EXPLICIT_NONCE_LENGTH + suite.tagLength;
}

const EXPLICIT_NONCE_LENGTH = 8;

abstract class AeadState {
  protected readonly key: GcmKey;
  protected readonly nonce = new Uint8Array(12);
  protected readonly aad = new Uint8Array(13);

  constructor(readonly suite: AeadSuite, key: Uint8Array, salt: Uint8Array) {
    if (key.length !== 16 || salt.length !== 4) {
      throw new RangeError("AES-128 AEAD needs a 16-byte key and 4-byte salt");
    }
    this.key = newGcmKey(key);
    this.nonce.set(salt, 0);
  }

  /** RFC 5246 §6.2.3.3: additional_data = seq_num(epoch|seq) + type + version + plaintext length. */
  protected fillAad(h: RecordHeader, plaintextLength: number): void {
    const a = this.aad;
    a[0] = h.epoch >> 8;
    a[1] = h.epoch & 0xff;
    writeUint48(a, 2, h.sequence);
    a[8] = h.type;
    a[9] = h.version >> 8;
    a[10] = h.version & 0xff;
    a[11] = plaintextLength >> 8;
    a[12] = plaintextLength & 0xff;
  }
}

/** Seals outgoing records of one epoch. */
export class RecordSealer extends AeadState {
  /** Returns one complete record: header, explicit nonce, ciphertext, tag. */
  seal(h: RecordHeader, plaintext: Uint8Array): Uint8Array {
    const n = plaintext.length;
    const tagLength = this.suite.tagLength;
    const out = new Uint8Array(RECORD_HEADER_LENGTH + EXPLICIT_NONCE_LENGTH + n + tagLength);
    h.length = EXPLICIT_NONCE_LENGTH + n + tagLength;
    writeRecordHeader(out, 0, h);
    // explicit nonce = epoch | sequence, the same 8 bytes as the record's header fields
    const nonce = this.nonce;
    for (let i = 0; i < 8; i++) nonce[4 + i] = out[RECORD_HEADER_LENGTH + i] = out[3 + i];
    this.fillAad(h, n);
    this.key.seal(nonce, this.aad, plaintext, out, RECORD_HEADER_LENGTH + EXPLICIT_NONCE_LENGTH);
    return out;
  }
}

/** Opens incoming records of one epoch. */
export class RecordOpener extends AeadState {
  /** The plaintext, or null when the record does not authenticate (dropped silently, RFC 6347 §4.1.2.1). */
  open(h: RecordHeader, fragment: Uint8Array): Uint8Array | null {
    const tagLength = this.suite.tagLength;
    const n = fragment.length - EXPLICIT_NONCE_LENGTH - tagLength;
    if (n < 0) return null;
    const nonce = this.nonce;
    for (let i = 0; i < EXPLICIT_NONCE_LENGTH; i++) nonce[4 + i] = fragment[i];
    this.fillAad(h, n);
    return this.key.open(
      nonce,
      this.aad,
      fragment.subarray(EXPLICIT_NONCE_LENGTH, EXPLICIT_NONCE_LENGTH + n),
      fragment.subarray(EXPLICIT_NONCE_LENGTH + n),
    );
  }
}
