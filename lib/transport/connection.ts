/**
 * A transport connection over one DatagramSession: receives and dispatches packets, drives loss
 * recovery, congestion control, pacing and packet size discovery from one timer, and owns the streams.
 */
import { type DatagramSession, DatagramTooLargeError, SessionClosedError } from "../dtls/session.ts";
import { setImmediate } from "node:timers";
import { type Clock, systemClock } from "../log/clock.ts";
import { type Logger, silentLogger } from "../log/logger.ts";
import { type CongestionController, NewReno, Pacer } from "./congestion.ts";
import {
  type ConnectionOptions,
  INITIAL_CONNECTION_WINDOW,
  INITIAL_STREAM_WINDOW,
} from "./connection_options.ts";
import { AckTracker } from "./ack_tracker.ts";
import { DeadlineTimer } from "./deadline_timer.ts";
import { ConnectionClosedError, TransportError, TransportErrorCode } from "./errors.ts";
import { ReceiveWindow, SendCredit } from "./flow_control.ts";
import { type Frame, isAckEliciting, readFrame } from "./frames/frame.ts";
import { Packer, type PackerHost } from "./packer.ts";
import { readPacketHeader } from "./packet.ts";
import { BASE_DATAGRAM_SIZE, MAX_PROBES, PathMtuDiscovery } from "./pmtu.ts";
import { onFrameAcked, requeueFrames } from "./retransmission.ts";
import { LossRecovery } from "./recovery.ts";
import { GRANULARITY_MS, RttEstimator } from "./rtt.ts";
import { RoundRobinScheduler } from "./scheduler.ts";
import type { SentFrame, SentPacket } from "./sent_packet.ts";
import { Stream, type StreamHost } from "./stream.ts";
import { StreamMap } from "./stream_map.ts";
import type { ConnectionCloseInfo, ConnectionStats, TransportConnection, TransportStream } from "./types.ts";
import { BufferReader, FrameDecodeError } from "./varint.ts";

export { type ConnectionOptions, INITIAL_CONNECTION_WINDOW, INITIAL_STREAM_WINDOW };

type State = "open" | "closing" | "closed";

/** Microtask hops a queued flush waits: `await writer.write()` twice and `close()` take about 8. */
const FLUSH_MICROTASK_HOPS = 16;

/** Consecutive PTOs with packets above the base size outstanding that make a black hole suspect. */
const BLACK_HOLE_PTO_COUNT = 2;

/** Creates a connection over a datagram session. */
export function createConnection(session: DatagramSession, options: ConnectionOptions): Connection {
  return new Connection(session, options);
}

export class Connection implements TransportConnection, StreamHost, PackerHost {
  readonly closed: Promise<ConnectionCloseInfo>;
  readonly clock: Clock;
  readonly rtt: RttEstimator;
  readonly cc: CongestionController;
  readonly recovery: LossRecovery;
  readonly acks: AckTracker;
  readonly pmtu: PathMtuDiscovery;
  readonly scheduler = new RoundRobinScheduler<Stream>();
  readonly streamMap: StreamMap;
  readonly connSend = new SendCredit(INITIAL_CONNECTION_WINDOW);
  readonly connRecv: ReceiveWindow;
  readonly controlStreams = new Set<Stream>();
  readonly connBlocked: Stream[] = [];
  needsMaxData = false;
  needsPing = false;
  retransmittedFrames = 0;
  packetsSent = 0;
  probeTimeouts = 0;
  #packer: Packer;
  #pacer: Pacer;
  #logger: Logger;
  #state: State = "open";
  #resolveClosed!: (info: ConnectionCloseInfo) => void;
  #onStream: ((s: TransportStream) => void) | undefined;
  #pendingIncoming: Stream[] = [];
  #timer: DeadlineTimer;
  #flushQueued = false;
  #flushHops = 0;
  #flushing = false;
  #pacingDeadline: number | undefined;
  #immediate: ((fn: () => void) => void) | undefined;
  #immediateQueued = false;
  #probesToSend = 0;
  /** PTO probes go out at the base size: a black hole is suspected. */
  #baseSizeProbes = false;
  /** Black-hole evidence: packets above the base size lost since one was last acknowledged. */
  #largeLost = 0;
  #firstLargeLost = Infinity;
  #largeLostFrom = Infinity;
  #largeLostTo = -Infinity;
  #smallAckedSinceLargeLost = false;
  #largestLargeAcked = -1;
  #lastReceiveTime: number;
  #lastKeepAlive: number;
  #closeDeadline: number | undefined;
  #closeCode = 0;
  #closeReason = "";
  readonly #idleTimeout: number;
  readonly #keepAlive: number;
  readonly #closeTimeout: number;
  readonly #closeSession: boolean;
  readonly #sendSlack: number;
  readonly #maxStreamWindow: number;

  constructor(readonly session: DatagramSession, options: ConnectionOptions) {
    this.clock = options.clock ?? systemClock;
    this.#logger = (options.logger ?? silentLogger).child({ component: "transport", session: session.id });
    this.#idleTimeout = options.idleTimeoutMs ?? 30_000;
    this.#keepAlive = options.keepAliveMs ?? 10_000;
    this.#closeTimeout = options.closeTimeoutMs ?? 5_000;
    this.#closeSession = options.closeSessionOnClose ?? true;
    this.#sendSlack = options.sendSlack ?? 64 * 1024;
    this.#maxStreamWindow = Math.max(
      options.maxStreamReceiveWindow ?? 6 * 1024 * 1024,
      INITIAL_STREAM_WINDOW,
    );
    const now = this.clock.now();
    this.#lastReceiveTime = now;
    this.#lastKeepAlive = now;
    const maxAckDelay = options.maxAckDelayMs ?? 10;
    this.rtt = new RttEstimator(options.initialRttMs ?? 100);
    this.pmtu = new PathMtuDiscovery(
      Math.min(session.maxDatagramSize, options.pmtuMaxSize ?? Infinity),
      options.pmtuDiscovery ?? true,
    );
    this.cc = (options.congestionController ?? ((m) => new NewReno(m)))(this.pmtu.current);
    this.#immediate = options.immediate === undefined
      ? (this.clock === systemClock ? setImmediate : undefined)
      : options.immediate ?? undefined;
    this.#pacer = new Pacer(this.pmtu.current, now, this.#immediate ? 0.5 : 4);
    this.acks = new AckTracker(maxAckDelay, options.ackElicitingThreshold ?? 2);
    this.recovery = new LossRecovery(this.rtt, this.cc, maxAckDelay, {
      onPacketAcked: (p) => this.#onPacketAcked(p),
      onPacketLost: (p) => this.#onPacketLost(p),
    });
    const connWindow = Math.max(options.connectionReceiveWindow ?? 1536 * 1024, INITIAL_CONNECTION_WINDOW);
    const maxConnWindow = Math.max(options.maxConnectionReceiveWindow ?? 15 * 1024 * 1024, connWindow);
    this.connRecv = new ReceiveWindow(connWindow, maxConnWindow, now);
    this.needsMaxData = connWindow > INITIAL_CONNECTION_WINDOW;
    this.streamMap = new StreamMap(
      options.role,
      options.maxIncomingStreams ?? 16_384,
      (id) => this.#createStream(id),
      (s) => this.#emitIncoming(s),
    );
    this.#packer = new Packer(this);
    this.#timer = new DeadlineTimer(this.clock, () => this.#onTimer());
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    session.onDatagram((data) => this.#onDatagram(data));
    session.closed.then(
      (reason) =>
        this.#terminate({ kind: "session_closed", code: 0, reason: `${reason.code}: ${reason.message}` }),
      () => this.#terminate({ kind: "session_closed", code: 0, reason: "session failed" }),
    );
    if (this.needsMaxData || this.streamMap.needsMaxStreams) this.#queueFlush();
    this.#armTimer();
  }

  // --- public API ---

  openStream(): Promise<TransportStream> {
    if (this.#state !== "open") return Promise.reject(this.#closedError());
    return this.streamMap.open();
  }

  onStream(handler: (stream: TransportStream) => void): void {
    this.#onStream = handler;
    for (const s of this.#pendingIncoming.splice(0)) handler(s);
  }

  close(code = 0, reason = ""): Promise<void> {
    if (this.#state === "open") {
      this.#state = "closing";
      this.#closeCode = code;
      this.#closeReason = reason;
      this.#closeDeadline = this.clock.now() + this.#closeTimeout;
      this.streamMap.rejectWaiters(this.#closedError());
      this.#maybeFinishClose();
      this.#armTimer();
    }
    return this.closed.then(() => {});
  }

  abort(code = 0, reason = ""): void {
    if (this.#state === "closed") return;
    this.#sendConnectionClose(code, reason);
    this.#terminate({ kind: "local", code, reason });
  }

  stats(): ConnectionStats {
    return {
      smoothedRttMs: this.rtt.smoothedRtt,
      minRttMs: this.rtt.minRtt,
      congestionWindow: this.cc.congestionWindow,
      bytesInFlight: this.recovery.bytesInFlight,
      packetsSent: this.packetsSent,
      packetsLost: this.recovery.packetsLost,
      retransmittedFrames: this.retransmittedFrames,
      maxDatagramSize: this.datagramSize(),
      openStreams: this.streamMap.streams.size,
      probeTimeouts: this.probeTimeouts,
    };
  }

  /** The stream with this id, if open (tests and diagnostics). */
  stream(id: number): Stream | undefined {
    return this.streamMap.streams.get(id);
  }

  // --- StreamHost ---

  now(): number {
    return this.clock.now();
  }

  smoothedRtt(): number {
    return this.rtt.smoothedRtt;
  }

  wake(stream: Stream): void {
    if (this.#state === "closed") return;
    if (stream.needsMaxStreamData || stream.needsResetStream || stream.needsStopSending) {
      this.controlStreams.add(stream);
    }
    this.scheduler.push(stream);
    this.#queueFlush();
  }

  onConsumed(stream: Stream, n: number): void {
    this.connRecv.ensureWindowSize(Math.ceil(stream.recv.window.windowSize * 1.5));
    if (this.connRecv.onConsumed(n, this.clock.now(), this.rtt.smoothedRtt) !== undefined) {
      this.needsMaxData = true;
      this.#queueFlush();
    }
  }

  onTerminated(stream: Stream): void {
    this.streamMap.onTerminated(stream);
    // A terminated stream may still owe the peer a RESET_STREAM or STOP_SENDING; the packer drops it after.
    if (stream.needsResetStream || stream.needsStopSending) this.#queueFlush();
    else this.controlStreams.delete(stream);
    if (this.streamMap.needsMaxStreams) this.#queueFlush();
    if (this.#state === "closing") this.#maybeFinishClose();
  }

  flushPending(): void {
    if (this.#flushQueued) this.#flush();
  }

  // --- PackerHost ---

  datagramSize(): number {
    return Math.min(this.pmtu.current, this.session.maxDatagramSize);
  }

  // --- streams ---

  #createStream(id: number): Stream {
    return new Stream(id, this, {
      sendLimit: INITIAL_STREAM_WINDOW,
      receiveWindow: INITIAL_STREAM_WINDOW,
      maxReceiveWindow: this.#maxStreamWindow,
      sendSlack: this.#sendSlack,
    });
  }

  #emitIncoming(s: Stream): void {
    if (this.#onStream === undefined) {
      this.#pendingIncoming.push(s);
      return;
    }
    try {
      this.#onStream(s);
    } catch (e) {
      // The application's handler failed: that stream is its problem, not the connection's.
      this.#logger.error({ err: String(e), stream: s.id }, "onStream handler threw");
      s.reset(TransportErrorCode.INTERNAL_ERROR);
    }
  }

  // --- receiving ---

  #onDatagram(data: Uint8Array): void {
    if (this.#state === "closed") return;
    try {
      this.#processPacket(data);
      this.#flush();
    } catch (e) {
      if (e instanceof TransportError) {
        this.#logger.warn({ code: e.code, err: e.message }, "peer violated the transport protocol");
        this.abort(e.code, e.message);
      } else {
        this.#fail(e);
      }
    }
  }

  #processPacket(data: Uint8Array): void {
    const now = this.clock.now();
    const r = new BufferReader(data);
    let packetNumber: number;
    try {
      packetNumber = readPacketHeader(r).packetNumber;
    } catch {
      return; // not ours or truncated: drop it
    }
    const frames: Frame[] = [];
    let ackEliciting = false;
    try {
      while (r.remaining > 0) {
        const f = readFrame(r);
        if (isAckEliciting(f)) ackEliciting = true;
        frames.push(f);
      }
    } catch (e) {
      if (e instanceof FrameDecodeError) {
        throw new TransportError(TransportErrorCode.FRAME_ENCODING_ERROR, e.message);
      }
      throw e;
    }
    const ackDelay = Math.max(GRANULARITY_MS, this.rtt.smoothedRtt / 4);
    if (!this.acks.onPacketReceived(packetNumber, ackEliciting, now, ackDelay)) return;
    this.#lastReceiveTime = now;
    for (const f of frames) {
      this.#handleFrame(f, now);
      if (this.#state === "closed") return;
    }
  }

  #handleFrame(f: Frame, now: number): void {
    switch (f.type) {
      case "padding":
      case "ping":
        return;
      case "ack":
        this.recovery.onAckReceived(f, now);
        this.#checkBlackHole(now);
        this.#pacer.update(this.cc.congestionWindow, this.rtt.smoothedRtt, this.datagramSize());
        if (this.#state === "closing") this.#maybeFinishClose();
        return;
      case "stream": {
        const s = this.streamMap.get(f.streamId, 0x08);
        if (s === undefined) return;
        const before = s.recv.window.highestReceived;
        s.onData(f.offset, f.data, f.fin);
        this.#onStreamBytes(s, before);
        return;
      }
      case "reset_stream": {
        const s = this.streamMap.get(f.streamId, 0x04);
        if (s === undefined) return;
        const before = s.recv.window.highestReceived;
        s.onResetStream(f.errorCode, f.finalSize);
        this.#onStreamBytes(s, before);
        return;
      }
      case "stop_sending":
        this.streamMap.get(f.streamId, 0x05)?.onStopSending(f.errorCode);
        return;
      case "max_data":
        if (this.connSend.update(f.maximumData)) {
          for (const s of this.connBlocked.splice(0)) this.scheduler.push(s);
        }
        return;
      case "max_stream_data":
        this.streamMap.get(f.streamId, 0x11)?.onMaxStreamData(f.maximumStreamData);
        return;
      case "max_streams":
        this.streamMap.onMaxStreams(f.maximumStreams);
        return;
      case "connection_close":
        this.#terminate({ kind: "remote", code: f.errorCode, reason: f.reason });
        return;
    }
  }

  /** Connection-level accounting of new stream bytes (RFC 9000 §4.1); discarded bytes count as consumed. */
  #onStreamBytes(s: Stream, before: number): void {
    const added = s.recv.window.highestReceived - before;
    if (added <= 0) return;
    if (!this.connRecv.onReceived(this.connRecv.highestReceived + added)) {
      throw new TransportError(TransportErrorCode.FLOW_CONTROL_ERROR, "connection data exceeds MAX_DATA");
    }
    if (s.discarding) this.onConsumed(s, added);
  }

  // --- acknowledgements and loss ---

  #onPacketAcked(p: SentPacket): void {
    if (p.isPmtuProbe) {
      const size = this.pmtu.onProbeAcked(p.size);
      this.cc.setMaxDatagramSize(size);
      this.#logger.debug({ size }, "packet size probe acknowledged");
    } else if (p.size > BASE_DATAGRAM_SIZE) {
      if (p.packetNumber > this.#largestLargeAcked) this.#largestLargeAcked = p.packetNumber;
      if (p.packetNumber > this.#firstLargeLost) this.#clearBlackHoleEvidence();
    } else if (p.ackEliciting && p.packetNumber > this.#firstLargeLost) {
      this.#smallAckedSinceLargeLost = true;
    }
    for (const f of p.frames) onFrameAcked(this, f);
  }

  #onPacketLost(p: SentPacket): void {
    if (p.isPmtuProbe) {
      this.pmtu.onProbeLost(p.size);
      return;
    }
    // Evidence only when no large packet sent after this one has been acknowledged.
    if (
      p.size > BASE_DATAGRAM_SIZE && this.pmtu.current > BASE_DATAGRAM_SIZE &&
      p.packetNumber > this.#largestLargeAcked
    ) {
      this.#largeLost++;
      if (p.packetNumber < this.#firstLargeLost) this.#firstLargeLost = p.packetNumber;
      if (p.timeSent < this.#largeLostFrom) this.#largeLostFrom = p.timeSent;
      if (p.timeSent > this.#largeLostTo) this.#largeLostTo = p.timeSent;
    }
    this.#requeueFrames(p.frames);
  }

  #clearBlackHoleEvidence(): void {
    this.#largeLost = 0;
    this.#firstLargeLost = Infinity;
    this.#largeLostFrom = Infinity;
    this.#largeLostTo = -Infinity;
    this.#smallAckedSinceLargeLost = false;
  }

  /**
   * RFC 8899 §4.3: large packets keep getting lost (none acknowledged since) while smaller ones sent after
   * them arrive, and this lasts: the losses span at least a PTO's worth of sending (smoothed RTT plus
   * max_ack_delay). A random loss is cleared by the next large packet's acknowledgement; a burst of drops
   * from a full receive buffer (which also favours small packets) is over sooner.
   */
  #checkBlackHole(now: number): void {
    if (this.#largeLost < MAX_PROBES || !this.#smallAckedSinceLargeLost) return;
    if (this.#largeLostTo - this.#largeLostFrom < this.rtt.smoothedRtt + this.recovery.maxAckDelay) return;
    this.#onBlackHole(now);
  }

  /** Back to the base size: what is outstanding above it is resent now in base-size packets. */
  #onBlackHole(now: number): void {
    const from = this.pmtu.current;
    this.recovery.discardLargerThan(BASE_DATAGRAM_SIZE);
    this.pmtu.onBlackHole(now);
    this.cc.setMaxDatagramSize(this.datagramSize());
    this.#pacer.update(this.cc.congestionWindow, this.rtt.smoothedRtt, this.datagramSize());
    this.#clearBlackHoleEvidence();
    this.#logger.info({ from, size: this.datagramSize() }, "packet size black hole: back to the base size");
  }

  #requeueFrames(frames: SentFrame[]): void {
    requeueFrames(this, frames);
    this.#queueFlush();
  }

  // --- sending ---

  #queueFlush(): void {
    if (this.#flushQueued || this.#flushing || this.#state === "closed") return;
    this.#flushQueued = true;
    this.#flushHops = FLUSH_MICROTASK_HOPS;
    queueMicrotask(this.#runQueuedFlush);
  }

  /**
   * Writes made in one burst share packets: a head, its body and the FIN written with several awaits
   * leave together. The flush waits a few microtask hops for such await chains to settle, but stays in
   * the same macrotask (a later event, such as a browser's abort, still finds the data sent). Correctness
   * does not depend on when this runs.
   */
  readonly #runQueuedFlush = (): void => {
    if (--this.#flushHops > 0) {
      queueMicrotask(this.#runQueuedFlush);
      return;
    }
    this.#flushQueued = false;
    this.#flush();
  };

  #flush(): void {
    if (this.#state === "closed" || this.#flushing) return;
    this.#flushing = true;
    try {
      this.#sendLoop();
    } catch (e) {
      this.#fail(e);
    } finally {
      this.#flushing = false;
    }
    this.#armTimer();
  }

  /** A bug or an unexpected session error: never thrown into timers or microtasks, the connection ends. */
  #fail(e: unknown): void {
    this.#logger.error({ err: String(e) }, "transport failure");
    this.abort(TransportErrorCode.INTERNAL_ERROR, "internal error");
  }

  #sendLoop(): void {
    this.#pacingDeadline = undefined;
    for (;;) {
      if (this.#state === "closed") return;
      const now = this.clock.now();
      const size = this.datagramSize();
      if (this.#probesToSend > 0) {
        this.#probesToSend--;
        const probe = this.#baseSizeProbes ? Math.min(size, BASE_DATAGRAM_SIZE) : size;
        this.#send(this.#packer.pack(now, probe, true, true), false);
        continue;
      }
      const cwndOpen = this.recovery.bytesInFlight < this.cc.congestionWindow;
      const probeSize = cwndOpen ? this.pmtu.probeSize(now) : undefined;
      if (probeSize !== undefined && probeSize > size) {
        this.pmtu.onProbeSent();
        this.#send(this.#packer.packPmtuProbe(now, probeSize), true);
        continue;
      }
      let allowData = cwndOpen && this.scheduler.size > 0;
      if (allowData) {
        const wait = this.#pacer.timeUntilSend(now, size);
        if (wait > 0) {
          if (this.#immediate !== undefined && wait < 1) this.#resumeSoon();
          else this.#pacingDeadline = now + wait;
          allowData = false;
        }
      }
      if (!allowData && !this.#packer.hasControlFrames() && !this.acks.ackDue(now)) return;
      const packet = this.#packer.pack(now, size, allowData, false);
      if (packet === undefined) return;
      this.#send(packet, false);
    }
  }

  /** Sub-millisecond pacing: resume on the next event-loop turn, after incoming datagrams are read. */
  #resumeSoon(): void {
    if (this.#immediateQueued) return;
    this.#immediateQueued = true;
    this.#immediate!(() => {
      this.#immediateQueued = false;
      this.#flush();
    });
  }

  /** Hands a packet to the session and to loss recovery. */
  #send(packet: { sent: SentPacket; bytes: Uint8Array } | undefined, isProbe: boolean): void {
    if (packet === undefined) return;
    const { sent, bytes } = packet;
    try {
      this.session.send(bytes);
    } catch (e) {
      if (e instanceof DatagramTooLargeError) {
        if (isProbe) this.pmtu.onProbeLost(sent.size, true);
        else {
          this.pmtu.onSizeRefused(e.max);
          this.cc.setMaxDatagramSize(this.datagramSize());
          this.#requeueFrames(sent.frames);
        }
        return;
      }
      if (e instanceof SessionClosedError) {
        this.#terminate({ kind: "session_closed", code: 0, reason: e.message });
        return;
      }
      throw e;
    }
    this.packetsSent++;
    this.recovery.onPacketSent(sent);
    if (sent.inFlight) this.#pacer.onPacketSent(sent.timeSent, sent.size);
  }

  /** Sent twice: it is never retransmitted, and a lost one leaves the peer only its idle timeout. */
  #sendConnectionClose(code: number, reason: string): void {
    for (let i = 0; i < 2; i++) {
      const packet = this.#packer.packConnectionClose(this.clock.now(), this.datagramSize(), code, reason);
      try {
        this.session.send(packet);
      } catch {
        return; // the session is gone or refuses: the peer's idle timeout will do
      }
    }
  }

  // --- timers ---

  #deadline(): number {
    let t = this.#lastReceiveTime + this.#idleTimeout;
    const loss = this.recovery.lossDetectionDeadline();
    if (loss !== undefined && loss < t) t = loss;
    const ack = this.acks.ackDeadline;
    if (ack !== undefined && ack < t) t = ack;
    if (this.#pacingDeadline !== undefined && this.#pacingDeadline < t) t = this.#pacingDeadline;
    if (this.#keepAlive > 0) {
      const k = Math.max(this.#lastReceiveTime, this.#lastKeepAlive) + this.#keepAlive;
      if (k < t) t = k;
    }
    if (this.#closeDeadline !== undefined && this.#closeDeadline < t) t = this.#closeDeadline;
    return t;
  }

  #armTimer(): void {
    if (this.#state === "closed") return;
    this.#timer.arm(this.#deadline());
  }

  #onTimer(): void {
    if (this.#state === "closed") return;
    try {
      this.#onDeadline();
    } catch (e) {
      this.#fail(e);
    }
  }

  #onDeadline(): void {
    const now = this.clock.now();
    if (now >= this.#lastReceiveTime + this.#idleTimeout) {
      this.#terminate({ kind: "idle_timeout", code: 0, reason: `no packet for ${this.#idleTimeout} ms` });
      return;
    }
    if (this.#closeDeadline !== undefined && now >= this.#closeDeadline) {
      this.#finishClose();
      return;
    }
    const loss = this.recovery.lossDetectionDeadline();
    if (loss !== undefined && now >= loss) {
      if (this.recovery.onLossDetectionTimeout(now)) this.#onProbeTimeout();
      else this.#checkBlackHole(now);
    }
    if (
      this.#keepAlive > 0 && now >= Math.max(this.#lastReceiveTime, this.#lastKeepAlive) + this.#keepAlive
    ) {
      this.#lastKeepAlive = now;
      this.needsPing = true;
    }
    this.#flush();
  }

  /**
   * RFC 9002 §6.2.4: two probe packets; with no new data they carry the oldest unacknowledged frames.
   * From the second PTO in a row with packets above the base size outstanding, the probes are base-size
   * packets: if they are acknowledged while the large ones are lost, that is a black hole (#checkBlackHole).
   */
  #onProbeTimeout(): void {
    this.probeTimeouts++;
    this.#probesToSend = 2;
    this.#baseSizeProbes = this.recovery.ptoCount >= BLACK_HOLE_PTO_COUNT &&
      this.pmtu.current > BASE_DATAGRAM_SIZE && this.recovery.hasOutstandingLargerThan(BASE_DATAGRAM_SIZE);
    if (this.scheduler.size > 0) return;
    for (const p of this.recovery.oldestOutstanding(2)) this.#requeueFrames(p.frames);
  }

  // --- closing ---

  #maybeFinishClose(): void {
    if (this.#state !== "closing") return;
    for (const s of this.streamMap.streams.values()) if (!s.send.isSettled) return;
    this.#finishClose();
  }

  #finishClose(): void {
    this.#sendConnectionClose(this.#closeCode, this.#closeReason);
    this.#terminate({ kind: "local", code: this.#closeCode, reason: this.#closeReason });
  }

  #closedError(): ConnectionClosedError {
    return new ConnectionClosedError({
      kind: "local",
      code: this.#closeCode,
      reason: "connection is closing",
    });
  }

  #terminate(info: ConnectionCloseInfo): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#timer.stop();
    const error = new ConnectionClosedError(info);
    for (const s of this.streamMap.streams.values()) s.onConnectionClosed(error);
    this.streamMap.rejectWaiters(error);
    this.session.onDatagram(null);
    if (this.#closeSession && info.kind !== "session_closed") {
      try {
        this.session.close(info.reason || info.kind);
      } catch { /* already closed */ }
    }
    const st = this.stats();
    this.#logger.debug({
      kind: info.kind,
      code: info.code,
      reason: info.reason,
      rtt_ms: Math.round(st.smoothedRttMs * 100) / 100,
      packets_sent: st.packetsSent,
      packets_lost: st.packetsLost,
      datagram_size: st.maxDatagramSize,
    }, "transport connection closed");
    this.#resolveClosed(info);
  }
}
