/**
 * An in-memory pair of DatagramSessions with loss, duplication, reordering, delay, jitter, bandwidth
 * and a path MTU, driven by an injected clock and a seeded random source: deterministic tests and benchmarks.
 * Test and benchmark support (lib/testing): no entrypoint or production module imports it.
 */
import {
  type CloseReason,
  type DatagramSession,
  DatagramTooLargeError,
  type PeerAddress,
  SessionClosedError,
} from "../dtls/session.ts";
import { type Clock, systemClock, type TimerId } from "../log/clock.ts";
import { seededRandom } from "./seeded_random.ts";

export interface LinkConditions {
  /** Probability a datagram is dropped. */
  lossRate: number;
  /** Probability a datagram is delivered twice. */
  duplicateRate: number;
  /** Probability a datagram is held back by reorderDelayMs. */
  reorderRate: number;
  reorderDelayMs: number;
  /** One-way propagation delay. */
  delayMs: number;
  /** Uniform extra delay in [0, jitterMs). */
  jitterMs: number;
  /** Serialization rate; Infinity for none. */
  bandwidthBytesPerSec: number;
  /** Drop-tail queue in front of the bandwidth limit. */
  queueBytes: number;
  /** Datagrams larger than this vanish silently (a path MTU black hole). */
  pathMtu: number;
}

export interface MemoryLinkOptions extends Partial<LinkConditions> {
  clock?: Clock;
  seed?: number;
  /** What each session reports as maxDatagramSize (default 16384). */
  maxDatagramSize?: number;
  aToB?: Partial<LinkConditions>;
  bToA?: Partial<LinkConditions>;
}

export interface LinkStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  bytesDelivered: number;
}

const DEFAULTS: LinkConditions = {
  lossRate: 0,
  duplicateRate: 0,
  reorderRate: 0,
  reorderDelayMs: 5,
  delayMs: 0,
  jitterMs: 0,
  bandwidthBytesPerSec: Infinity,
  queueBytes: Infinity,
  pathMtu: Infinity,
};

interface InFlight {
  at: number;
  seq: number;
  data: Uint8Array;
}

/** A binary min-heap of datagrams by arrival time, then sending order. */
class ArrivalQueue {
  #items: InFlight[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): InFlight | undefined {
    return this.#items[0];
  }

  #less(a: InFlight, b: InFlight): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  push(item: InFlight): void {
    const h = this.#items;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(h[i], h[parent])) break;
      [h[i], h[parent]] = [h[parent], h[i]];
      i = parent;
    }
  }

  pop(): InFlight | undefined {
    const h = this.#items;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l], h[m])) m = l;
        if (r < h.length && this.#less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }

  clear(): void {
    this.#items = [];
  }
}

/** One direction of the link. */
class LinkDirection {
  readonly queue = new ArrivalQueue();
  #seq = 0;
  #freeAt = 0;
  #timer: TimerId | undefined;
  #timerAt = Infinity;
  receiver: ((data: Uint8Array) => void) | null = null;
  cut = false;
  /** Latest arrival time scheduled: a close_notify sent after datagrams arrives after them, as over UDP mostly. */
  lastArrival = 0;

  constructor(
    public conditions: LinkConditions,
    readonly clock: Clock,
    readonly random: () => number,
    readonly stats: LinkStats,
  ) {}

  send(data: Uint8Array): void {
    const c = this.conditions;
    const now = this.clock.now();
    this.stats.sent++;
    if (this.cut || data.length > c.pathMtu || (c.lossRate > 0 && this.random() < c.lossRate)) {
      this.stats.dropped++;
      return;
    }
    let departAt = now;
    if (Number.isFinite(c.bandwidthBytesPerSec)) {
      const start = Math.max(now, this.#freeAt);
      if ((start - now) * c.bandwidthBytesPerSec / 1000 > c.queueBytes) {
        this.stats.dropped++;
        return;
      }
      departAt = start + (data.length * 1000) / c.bandwidthBytesPerSec;
      this.#freeAt = departAt;
    }
    let at = departAt + c.delayMs;
    if (c.jitterMs > 0) at += this.random() * c.jitterMs;
    if (c.reorderRate > 0 && this.random() < c.reorderRate) at += c.reorderDelayMs;
    this.queue.push({ at, seq: this.#seq++, data });
    if (at > this.lastArrival) this.lastArrival = at;
    if (c.duplicateRate > 0 && this.random() < c.duplicateRate) {
      this.stats.duplicated++;
      this.queue.push({ at: at + this.random() * (c.delayMs + 1), seq: this.#seq++, data: data.slice() });
    }
    this.#arm();
  }

  #arm(): void {
    const head = this.queue.peek();
    if (head === undefined || head.at >= this.#timerAt) return;
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timerAt = head.at;
    this.#timer = this.clock.setTimeout(() => this.#deliver(), Math.max(0, head.at - this.clock.now()));
  }

  #deliver(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.clock.now();
    for (let head = this.queue.peek(); head !== undefined && head.at <= now; head = this.queue.peek()) {
      this.queue.pop();
      if (this.cut || this.receiver === null) continue;
      this.stats.delivered++;
      this.stats.bytesDelivered += head.data.length;
      this.receiver(head.data);
    }
    this.#arm();
  }

  stop(): void {
    this.queue.clear();
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }
}

let nextLinkId = 1;

/** One end of a memory link. */
export class MemorySession implements DatagramSession {
  readonly identity = "memory.link";
  readonly remoteAddress: PeerAddress = { hostname: "memory", port: 0 };
  readonly closed: Promise<CloseReason>;
  maxDatagramSize: number;
  peer!: MemorySession;
  #resolveClosed!: (r: CloseReason) => void;
  #closeReason: CloseReason | undefined;

  constructor(
    readonly id: string,
    readonly out: LinkDirection,
    readonly inbound: LinkDirection,
    max: number,
  ) {
    this.maxDatagramSize = max;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  send(data: Uint8Array): void {
    if (this.#closeReason !== undefined) throw new SessionClosedError(this.#closeReason);
    if (data.length > this.maxDatagramSize) {
      throw new DatagramTooLargeError(data.length, this.maxDatagramSize);
    }
    this.out.send(data);
  }

  onDatagram(receiver: ((data: Uint8Array) => void) | null): void {
    this.inbound.receiver = receiver;
  }

  close(message = "closed"): void {
    if (this.#closeReason !== undefined) return;
    this.end({ code: "closed", message, remote: false });
    if (!this.out.cut) {
      const now = this.out.clock.now();
      const delay = Math.max(this.out.conditions.delayMs, this.out.lastArrival - now) + 0.001;
      this.out.clock.setTimeout(() => this.peer.end({ code: "close_notify", message, remote: true }), delay);
    }
  }

  /** Ends this side with a reason (the link's own use, and tests simulating failures). */
  end(reason: CloseReason): void {
    if (this.#closeReason !== undefined) return;
    this.#closeReason = reason;
    this.inbound.receiver = null;
    this.inbound.stop();
    this.#resolveClosed(reason);
  }
}

export interface MemoryLink {
  a: MemorySession;
  b: MemorySession;
  stats: { aToB: LinkStats; bToA: LinkStats };
  /** Changes conditions from now on, both directions or one. */
  setConditions(c: Partial<LinkConditions>, direction?: "aToB" | "bToA"): void;
  /** The peer vanishes: every datagram is dropped from now on, both ways, silently. */
  cut(): void;
}

/** Creates a connected pair of in-memory datagram sessions. */
export function createMemoryLink(options: MemoryLinkOptions = {}): MemoryLink {
  const clock = options.clock ?? systemClock;
  const random = seededRandom(options.seed ?? 1);
  const { clock: _c, seed: _s, maxDatagramSize: _m, aToB, bToA, ...shared } = options;
  const base = { ...DEFAULTS, ...shared };
  const newStats = (): LinkStats => ({ sent: 0, delivered: 0, dropped: 0, duplicated: 0, bytesDelivered: 0 });
  const stats = { aToB: newStats(), bToA: newStats() };
  const ab = new LinkDirection({ ...base, ...aToB }, clock, random, stats.aToB);
  const ba = new LinkDirection({ ...base, ...bToA }, clock, random, stats.bToA);
  const max = options.maxDatagramSize ?? 16384;
  const id = nextLinkId++;
  const a = new MemorySession(`mem${id}a`, ab, ba, max);
  const b = new MemorySession(`mem${id}b`, ba, ab, max);
  a.peer = b;
  b.peer = a;
  return {
    a,
    b,
    stats,
    setConditions(c, direction) {
      if (direction !== "bToA") ab.conditions = { ...ab.conditions, ...c };
      if (direction !== "aToB") ba.conditions = { ...ba.conditions, ...c };
    },
    cut() {
      ab.cut = true;
      ba.cut = true;
    },
  };
}
