/**
 * Handshake message reassembly (RFC 6347 §4.2.3): fragments of one message may arrive out of
 * order, overlap or repeat; messages are released strictly in message_seq order. Bounded: a
 * message longer than maxMessageLength or too far ahead of the next expected one is refused.
 */
import type { HandshakeFragment } from "./messages.ts";
import { DtlsDecodeError } from "./errors.ts";

export interface HandshakeMessage {
  msgType: number;
  messageSeq: number;
  body: Uint8Array;
}

const MAX_RANGES = 64;

interface Partial {
  msgType: number;
  body: Uint8Array;
  /** Covered byte ranges, sorted and merged. */
  ranges: Array<[number, number]>;
}

export class HandshakeReassembler {
  #next: number;
  #partial = new Map<number, Partial>();

  constructor(
    nextSeq: number,
    readonly maxMessageLength = 16384,
    readonly maxAhead = 4,
  ) {
    this.#next = nextSeq;
  }

  /** The message_seq the reassembler will release next. */
  get nextSeq(): number {
    return this.#next;
  }

  /**
   * Adds a fragment; returns the messages that became complete, in order. Fragments of messages
   * already released return nothing (the caller treats them as a retransmitted flight).
   */
  add(f: HandshakeFragment): HandshakeMessage[] {
    if (f.messageSeq < this.#next) return [];
    if (f.messageSeq >= this.#next + this.maxAhead) return [];
    if (f.length > this.maxMessageLength) {
      throw new DtlsDecodeError(`handshake message of ${f.length} bytes exceeds ${this.maxMessageLength}`);
    }
    let p = this.#partial.get(f.messageSeq);
    if (p === undefined) {
      p = { msgType: f.msgType, body: new Uint8Array(f.length), ranges: [] };
      this.#partial.set(f.messageSeq, p);
    } else if (p.msgType !== f.msgType || p.body.length !== f.length) {
      throw new DtlsDecodeError(`fragment of message ${f.messageSeq} disagrees on type or length`);
    }
    p.body.set(f.body, f.fragmentOffset);
    p.ranges = mergeRange(p.ranges, f.fragmentOffset, f.fragmentOffset + f.body.length);
    // Many tiny disjoint fragments would make each merge slow; no honest peer needs this many.
    if (p.ranges.length > MAX_RANGES) {
      throw new DtlsDecodeError(`message ${f.messageSeq} split into too many pieces`);
    }
    const out: HandshakeMessage[] = [];
    for (;;) {
      const q = this.#partial.get(this.#next);
      if (q === undefined || !isComplete(q)) break;
      this.#partial.delete(this.#next);
      out.push({ msgType: q.msgType, messageSeq: this.#next, body: q.body });
      this.#next++;
    }
    return out;
  }
}

function isComplete(p: Partial): boolean {
  if (p.body.length === 0) return true;
  return p.ranges.length === 1 && p.ranges[0][0] === 0 && p.ranges[0][1] === p.body.length;
}

function mergeRange(ranges: Array<[number, number]>, start: number, end: number): Array<[number, number]> {
  if (end <= start) return ranges;
  const all = [...ranges, [start, end] as [number, number]].sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const r of all) {
    const last = merged[merged.length - 1];
    if (last !== undefined && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return merged;
}
