/**
 * Building a flight's datagrams (RFC 6347 §4.2.3, §4.1.1): handshake messages are fragmented so
 * each record fits the path MTU, and consecutive records are packed into as few datagrams as fit.
 */
import { RECORD_HEADER_LENGTH, type RecordHeader, writeRecordHeader } from "./record.ts";
import { fragmentHandshakeMessage, HANDSHAKE_HEADER_LENGTH } from "./messages.ts";
import type { RecordSealer } from "./cipher.ts";
import { ContentType, DTLS_1_2 } from "./constants.ts";

/** A write state: the epoch, its next record sequence number and, past epoch 0, its sealer. */
export interface WriteState {
  epoch: number;
  nextSeq: number;
  sealer: RecordSealer | null;
}

/** The largest handshake fragment body that fits one record in a datagram of `mtu` bytes. */
export function maxFragmentBody(mtu: number, protectionOverhead: number): number {
  return Math.max(1, mtu - RECORD_HEADER_LENGTH - HANDSHAKE_HEADER_LENGTH - protectionOverhead);
}

/** Collects one flight's records, sealing each with the write state it is given. */
export class FlightBuilder {
  readonly records: Uint8Array[] = [];
  constructor(readonly mtu: number) {}

  /** Adds one handshake message, fragmented to fit, protected under `ws`. */
  handshake(ws: WriteState, msgType: number, messageSeq: number, body: Uint8Array, overhead = 0): void {
    for (
      const frag of fragmentHandshakeMessage(msgType, messageSeq, body, maxFragmentBody(this.mtu, overhead))
    ) {
      this.records.push(sealRecord(ws, ContentType.handshake, frag));
    }
  }

  record(ws: WriteState, type: number, payload: Uint8Array): void {
    this.records.push(sealRecord(ws, type, payload));
  }

  /** Packs the records into datagrams no larger than mtu (a record larger than mtu travels alone). */
  datagrams(): Uint8Array[] {
    const out: Uint8Array[] = [];
    let batch: Uint8Array[] = [];
    let size = 0;
    for (const r of this.records) {
      if (size > 0 && size + r.length > this.mtu) {
        out.push(join(batch, size));
        batch = [];
        size = 0;
      }
      batch.push(r);
      size += r.length;
    }
    if (size > 0) out.push(join(batch, size));
    return out;
  }
}

/** One record under a write state; advances its sequence number. */
export function sealRecord(ws: WriteState, type: number, payload: Uint8Array): Uint8Array {
  const h: RecordHeader = {
    type,
    version: DTLS_1_2,
    epoch: ws.epoch,
    sequence: ws.nextSeq++,
    length: payload.length,
  };
  if (ws.sealer !== null) return ws.sealer.seal(h, payload);
  const out = new Uint8Array(RECORD_HEADER_LENGTH + payload.length);
  writeRecordHeader(out, 0, h);
  out.set(payload, RECORD_HEADER_LENGTH);
  return out;
}

function join(parts: Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
