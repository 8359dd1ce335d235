/**
 * A transport connection over one DatagramSession: receives and dispatches packets, drives loss
 * recovery, congestion control, pacing and packet size discovery from one timer, and owns the streams.
 */
import type { Clock } from "../log/clock.ts";
import type { Logger } from "../log/logger.ts";
import { type CongestionController, Pacer } from "./congestion.ts";
import {
  type ConnectionOptions,
  INITIAL_CONNECTION_WINDOW,
  INITIAL_STREAM_WINDOW,
  type ResolvedOptions,
  resolveOptions,
} from "./connection_options.ts";
import { AckTracker } from "./ack_tracker.ts";
import { closedState, type CloseState, notOpenError, OPEN } from "./close_state.ts";
import type { DatagramSession } from "./datagram_session.ts";
import { DeadlineTimer } from "./deadline_timer.ts";
import { ConnectionClosedError, TransportError, TransportErrorCode } from "./errors.ts";
import { ReceiveWindow, SendCredit } from "./flow_control.ts";
import { FlushScheduler } from "./flush_scheduler.ts";
import { Framer, type StreamControl } from "./framer.ts";
import { type FrameEvents, handleFrame, readPacket } from "./frame_handler.ts";
import { Packer, type PackerHost } from "./packer.ts";
import { Sender } from "./sender.ts";
import { PathMtuDiscovery } from "./pmtu.ts";
import { BlackHoleDetector } from "./pmtu_blackhole.ts";
import { Liveness } from "./liveness.ts";
import { LossRecovery } from "./recovery.ts";
import { GRANULARITY_MS, RttEstimator } from "./rtt.ts";
import type { SentFrame, SentPacket } from "./sent_packet.ts";
import { Stream, type StreamHost } from "./stream.ts";
import { StreamMap } from "./stream_map.ts";
import type { ConnectionCloseInfo, ConnectionStats, TransportConnection, TransportStream } from "./types.ts";

export { type ConnectionOptions, INITIAL_CONNECTION_WINDOW, INITIAL_STREAM_WINDOW };

export class Connection implements TransportConnection, StreamHost, PackerHost {
  readonly closed: Promise<ConnectionCloseInfo>;
  readonly clock: Clock;
  readonly rtt: RttEstimator;
  readonly cc: CongestionController;
  readonly recovery: LossRecovery;
  readonly acks: AckTracker;
  readonly pmtu: PathMtuDiscovery;
  readonly blackHole: BlackHoleDetector;
  readonly streamMap: StreamMap;
  readonly connSend = new SendCredit(INITIAL_CONNECTION_WINDOW);
  readonly connRecv: ReceiveWindow;
  readonly framer: Framer = new Framer(this);
  probeTimeouts = 0;
  #retransmittedFrames = 0;
  readonly #sender: Sender;
  /** Reactions to received frames that reach private state. */
  readonly #frameEvents: FrameEvents;
  #logger: Logger;
  #state: CloseState = OPEN;
  #resolveClosed!: (info: ConnectionCloseInfo) => void;
  #timer: DeadlineTimer;
  readonly #flushes: FlushScheduler;
  #flushing = false;
  readonly #liveness: Liveness;
  readonly #o: ResolvedOptions;

  constructor(readonly session: DatagramSession, options: ConnectionOptions) {
    const o = this.#o = resolveOptions(options);
    this.clock = o.clock;
    this.#logger = o.logger.child({ component: "transport", session: session.id });
    const now = this.clock.now();
    this.#liveness = new Liveness(o.idleTimeoutMs, o.keepAliveMs, now, o.quietProbeMs);
    this.rtt = new RttEstimator(o.initialRttMs);
    this.pmtu = new PathMtuDiscovery(Math.min(session.maxDatagramSize, o.pmtuMaxSize), o.pmtuDiscovery);
    this.blackHole = new BlackHoleDetector(this.pmtu);
    this.cc = o.congestionController(this.pmtu.current);
    this.#flushes = new FlushScheduler(() => this.#flush(), o.immediate);
    this.acks = new AckTracker(o.maxAckDelayMs, o.ackElicitingThreshold);
    this.recovery = new LossRecovery(this.rtt, this.cc, o.maxAckDelayMs, {
      onPacketAcked: (p) => this.#onPacketAcked(p),
      onPacketLost: (p) => this.#onPacketLost(p),
    });
    this.connRecv = new ReceiveWindow(o.connectionReceiveWindow, o.maxConnectionReceiveWindow, now);
    const streamOptions = {
      sendLimit: INITIAL_STREAM_WINDOW,
      receiveWindow: INITIAL_STREAM_WINDOW,
      maxReceiveWindow: o.maxStreamReceiveWindow,
      sendSlack: o.sendSlack,
    };
    if (o.connectionReceiveWindow > INITIAL_CONNECTION_WINDOW) this.framer.queueMaxData();
    this.streamMap = new StreamMap(
      options.role,
      o.maxIncomingStreams,
      (id) => new Stream(id, this, streamOptions),
      (s, e) => {
        this.#logger.error({ err: String(e), stream: s.id }, "onStream handler threw");
        s.reset(TransportErrorCode.INTERNAL_ERROR);
      },
      () => this.framer.queueMaxStreams(),
    );
    this.#frameEvents = {
      onAck: (ack, now) => {
        this.recovery.onAckReceived(ack, now);
        this.#checkBlackHole(now);
        this.#sender.updatePacer();
        if (this.#state.phase === "closing") this.#maybeFinishClose();
      },
      onPeerClose: (code, reason) => this.#terminate({ kind: "remote", code, reason }),
    };
    this.#sender = new Sender(
      this,
      {
        isClosed: () => this.#state.phase === "closed",
        requeueFrames: (frames) => this.#requeueFrames(frames),
        onSessionClosed: (reason) => this.#terminate({ kind: "session_closed", code: 0, reason }),
      },
      new Packer(this),
      new Pacer(this.pmtu.current, now, o.immediate ? 0.5 : 4),
      this.#flushes,
    );
    this.#timer = new DeadlineTimer(this.clock, () => this.#onTimer());
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    session.onDatagram((data) => this.#onDatagram(data));
    session.closed.then(
      (r) => this.#terminate({ kind: "session_closed", code: 0, reason: `${r.code}: ${r.message}` }),
      () => this.#terminate({ kind: "session_closed", code: 0, reason: "session failed" }),
    );
    if (this.framer.hasControlFrames()) this.#queueFlush();
    this.#armTimer();
  }

  // --- public API ---

  openStream(): Promise<TransportStream> {
    if (this.#state.phase !== "open") return Promise.reject(notOpenError(this.#state));
    return this.streamMap.open();
  }

  onStream(handler: (stream: TransportStream) => void): void {
    this.streamMap.onIncoming(handler);
  }

  close(code = 0, reason = ""): Promise<void> {
    if (this.#state.phase === "open") {
      this.#state = { phase: "closing", code, reason, deadline: this.clock.now() + this.#o.closeTimeoutMs };
      this.streamMap.rejectWaiters(notOpenError(this.#state));
      this.#maybeFinishClose();
      this.#armTimer();
    }
    return this.closed.then(() => {});
  }

  abort(code = 0, reason = ""): void {
    if (this.#state.phase === "closed") return;
    this.#sender.sendConnectionClose(code, reason);
    this.#terminate({ kind: "local", code, reason });
  }

  stats(): ConnectionStats {
    return {
      smoothedRttMs: this.rtt.smoothedRtt,
      minRttMs: this.rtt.minRtt,
      congestionWindow: this.cc.congestionWindow,
      bytesInFlight: this.recovery.bytesInFlight,
      packetsSent: this.#sender.packetsSent,
      packetsLost: this.recovery.packetsLost,
      retransmittedFrames: this.#retransmittedFrames,
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
    if (this.#state.phase === "closed") return;
    this.framer.scheduleStream(stream);
    this.#queueFlush();
  }

  onStreamDataLost(stream: Stream): void {
    this.#retransmittedFrames++;
    this.wake(stream);
  }

  queueControl(stream: Stream, frame: StreamControl): void {
    if (this.#state.phase === "closed") return;
    this.framer.queueStreamControl(stream, frame);
    this.wake(stream);
  }

  onConsumed(stream: Stream, n: number): void {
    this.connRecv.ensureWindowSize(Math.ceil(stream.recv.window.windowSize * 1.5));
    if (this.connRecv.onConsumed(n, this.clock.now(), this.rtt.smoothedRtt) !== undefined) {
      this.framer.queueMaxData();
      this.#queueFlush();
    }
  }

  onTerminated(stream: Stream): void {
    this.streamMap.onTerminated(stream);
    // A terminated stream may still owe the peer a RESET_STREAM or STOP_SENDING; the packer drops it after.
    if (this.framer.onStreamTerminated(stream) || this.framer.maxStreamsPending) this.#queueFlush();
    if (this.#state.phase === "closing") this.#maybeFinishClose();
  }

  flushPending(): void {
    if (this.#flushes.queued) this.#flush();
  }

  /** The size ordinary packets use now (PackerHost, SenderHost). */
  datagramSize(): number {
    return Math.min(this.pmtu.current, this.session.maxDatagramSize);
  }

  // --- receiving ---

  #onDatagram(data: Uint8Array): void {
    if (this.#state.phase === "closed") return;
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
    const packet = readPacket(data);
    if (packet === undefined) return;
    const ackDelay = Math.max(GRANULARITY_MS, this.rtt.smoothedRtt / 4);
    if (!this.acks.onPacketReceived(packet.packetNumber, packet.ackEliciting, now, ackDelay)) return;
    this.#liveness.onPacketReceived(now);
    for (const f of packet.frames) {
      handleFrame(this, this.#frameEvents, f, now);
      if (this.#state.phase === "closed") return;
    }
  }

  // --- acknowledgements and loss ---

  #onPacketAcked(p: SentPacket): void {
    const size = this.blackHole.onPacketAcked(p);
    if (size !== undefined) {
      this.cc.setMaxDatagramSize(size);
      this.#logger.debug({ size }, "packet size probe acknowledged");
    }
    for (const f of p.frames) f.fate.onAcked(f);
  }

  #onPacketLost(p: SentPacket): void {
    this.blackHole.onPacketLost(p);
    if (!p.isPmtuProbe) this.#requeueFrames(p.frames);
  }

  #checkBlackHole(now: number): void {
    const from = this.#sender.fallBackOnBlackHole(now);
    if (from === undefined) return;
    this.#logger.info({ from, size: this.datagramSize() }, "packet size black hole: back to the base size");
  }

  #requeueFrames(frames: SentFrame[]): void {
    for (const f of frames) f.fate.onLost(f);
    this.#queueFlush();
  }

  // --- sending ---

  #queueFlush(): void {
    if (this.#flushing || this.#state.phase === "closed") return;
    this.#flushes.queue();
  }

  #flush(): void {
    if (this.#state.phase === "closed" || this.#flushing) return;
    this.#flushing = true;
    try {
      this.#sender.sendLoop();
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

  // --- timers ---

  #deadline(): number {
    const state = this.#state;
    return Math.min(
      this.#liveness.idleDeadline,
      this.recovery.lossDetectionDeadline() ?? Infinity,
      this.acks.ackDeadline ?? Infinity,
      this.#sender.pacingDeadline ?? Infinity,
      this.#liveness.keepAliveDeadline ?? Infinity,
      state.phase === "closing" ? state.deadline : Infinity,
    );
  }

  #armTimer(): void {
    if (this.#state.phase === "closed") return;
    this.#timer.arm(this.#deadline());
  }

  #onTimer(): void {
    if (this.#state.phase === "closed") return;
    try {
      this.#onDeadline(this.clock.now());
    } catch (e) {
      this.#fail(e);
    }
  }

  #onDeadline(now: number): void {
    if (now >= this.#liveness.idleDeadline) {
      this.#terminate({ kind: "idle_timeout", code: 0, reason: `no packet for ${this.#o.idleTimeoutMs} ms` });
      return;
    }
    if (this.#state.phase === "closing" && now >= this.#state.deadline) {
      this.#finishClose();
      return;
    }
    const loss = this.recovery.lossDetectionDeadline();
    if (loss !== undefined && now >= loss) {
      if (this.recovery.onLossDetectionTimeout(now)) this.#onProbeTimeout();
      else this.#checkBlackHole(now);
    }
    if (this.#liveness.keepAliveDue(now)) this.framer.queuePing();
    this.#flush();
  }

  /** RFC 9002 §6.2.4 (Sender.onProbeTimeout): with no new data the probes carry the oldest frames. */
  #onProbeTimeout(): void {
    this.probeTimeouts++;
    if (!this.#sender.onProbeTimeout()) return;
    for (const p of this.recovery.oldestOutstanding(2)) this.#requeueFrames(p.frames);
  }

  // --- closing ---

  #maybeFinishClose(): void {
    if (this.#state.phase !== "closing") return;
    for (const s of this.streamMap.streams.values()) if (!s.send.isSettled) return;
    this.#finishClose();
  }

  #finishClose(): void {
    if (this.#state.phase !== "closing") return;
    this.abort(this.#state.code, this.#state.reason);
  }

  #terminate(info: ConnectionCloseInfo): void {
    if (this.#state.phase === "closed") return;
    this.#state = closedState(this.#state, info);
    this.#timer.stop();
    const error = new ConnectionClosedError(info);
    for (const s of this.streamMap.streams.values()) s.onConnectionClosed(error);
    this.streamMap.rejectWaiters(error);
    this.session.onDatagram(null);
    if (this.#o.closeSessionOnClose && info.kind !== "session_closed") {
      try {
        this.session.close(info.reason || info.kind);
      } catch { /* already closed */ }
    }
    const { smoothedRttMs, packetsSent, packetsLost, maxDatagramSize } = this.stats();
    const rtt_ms = Math.round(smoothedRttMs * 100) / 100;
    this.#logger.debug(
      { ...info, rtt_ms, packetsSent, packetsLost, maxDatagramSize },
      "transport connection closed",
    );
    this.#resolveClosed(info);
  }
}
