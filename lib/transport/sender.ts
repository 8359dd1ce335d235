/**
 * The send side of a connection: packs what the send mode allows (send_mode.ts), hands each packet to the
 * session and to loss recovery, paces (RFC 9002 §7.7) and owes PTO probes (RFC 9002 §6.2.4).
 */
import { DatagramTooLargeError, SessionClosedError } from "../dtls/session.ts";
import type { Clock } from "../log/clock.ts";
import type { AckTracker } from "./ack_tracker.ts";
import type { CongestionController, Pacer } from "./congestion.ts";
import type { DatagramSession } from "./datagram_session.ts";
import type { FlushScheduler } from "./flush_scheduler.ts";
import type { PackedPacket, Packer } from "./packer.ts";
import { BASE_DATAGRAM_SIZE, type PathMtuDiscovery } from "./pmtu.ts";
import type { BlackHoleDetector } from "./pmtu_blackhole.ts";
import type { LossRecovery } from "./recovery.ts";
import type { RttEstimator } from "./rtt.ts";
import { type SendLimits, sendMode } from "./send_mode.ts";
import type { SentFrame } from "./sent_packet.ts";

/** What the sender reads (the connection's parts). */
export interface SenderHost {
  readonly clock: Clock;
  readonly session: DatagramSession;
  readonly rtt: RttEstimator;
  readonly cc: CongestionController;
  readonly recovery: LossRecovery;
  readonly acks: AckTracker;
  readonly pmtu: PathMtuDiscovery;
  readonly blackHole: BlackHoleDetector;
  readonly framer: { readonly streamsWaiting: number };
  datagramSize(): number;
}

/** The connection's reactions the sender triggers. */
export interface SenderEvents {
  isClosed(): boolean;
  /** Frames of a packet the session refused, to be sent again. */
  requeueFrames(frames: SentFrame[]): void;
  /** The session refused a send because it has ended. */
  onSessionClosed(message: string): void;
}

export class Sender {
  packetsSent = 0;
  /** PTO probes owed. */
  probesToSend = 0;
  /** PTO probes go out at the base size: a black hole is suspected. */
  baseSizeProbes = false;
  /** When paced stream data may go next, if the last send loop stopped for the pacer. */
  pacingDeadline: number | undefined;
  readonly #limits: SendLimits;

  constructor(
    readonly host: SenderHost,
    readonly events: SenderEvents,
    readonly packer: Packer,
    readonly pacer: Pacer,
    readonly flushes: FlushScheduler,
  ) {
    this.#limits = { recovery: host.recovery, cc: host.cc, pmtu: host.pmtu, pacer };
  }

  /** The pacing rate follows the window, the smoothed RTT and the packet size. */
  updatePacer(): void {
    const h = this.host;
    this.pacer.update(h.cc.congestionWindow, h.rtt.smoothedRtt, h.datagramSize());
  }

  /**
   * RFC 9002 §6.2.4: a PTO owes two probe packets. From repeated PTOs with large packets outstanding they
   * go out at the base size (BlackHoleDetector). True when no stream data waits to fill them.
   */
  onProbeTimeout(): boolean {
    const h = this.host;
    this.probesToSend = 2;
    this.baseSizeProbes = h.blackHole.probeAtBaseSize(
      h.recovery.ptoCount,
      () => h.recovery.hasOutstandingLargerThan(BASE_DATAGRAM_SIZE),
    );
    return h.framer.streamsWaiting === 0;
  }

  /**
   * RFC 8899 §4.3 (BlackHoleDetector.detected): back to the base size, and what is outstanding above it is
   * resent now in base-size packets. Returns the size left behind, or undefined when there is no black hole.
   */
  fallBackOnBlackHole(now: number): number | undefined {
    const h = this.host;
    if (!h.blackHole.detected(h.rtt.smoothedRtt, h.recovery.maxAckDelay)) return undefined;
    const from = h.pmtu.current;
    h.recovery.discardLargerThan(BASE_DATAGRAM_SIZE);
    h.blackHole.fallBack(now);
    h.cc.setMaxDatagramSize(h.datagramSize());
    this.updatePacer();
    return from;
  }

  /** Sends until the send mode, the pacer or an empty queue says stop. */
  sendLoop(): void {
    const h = this.host;
    this.pacingDeadline = undefined;
    for (;;) {
      if (this.events.isClosed()) return;
      const now = h.clock.now();
      const size = h.datagramSize();
      const mode = sendMode(this.#limits, now, size, this.probesToSend, h.framer.streamsWaiting > 0);
      switch (mode.kind) {
        case "pto_probe": {
          this.probesToSend--;
          const probe = this.baseSizeProbes ? Math.min(size, BASE_DATAGRAM_SIZE) : size;
          this.#send(this.packer.pack(now, probe, true, true), false);
          continue;
        }
        case "pmtu_probe":
          h.pmtu.onProbeSent();
          this.#send(this.packer.packPmtuProbe(now, mode.size), true);
          continue;
        case "pacing_limited":
          if (this.flushes.canResumeSoon && mode.waitMs < 1) this.flushes.resumeSoon();
          else this.pacingDeadline = now + mode.waitMs;
          break;
      }
      const allowData = mode.kind === "any";
      if (!allowData && !this.packer.hasControlFrames() && !h.acks.ackDue(now)) return;
      const packet = this.packer.pack(now, size, allowData, false);
      if (packet === undefined) return;
      this.#send(packet, false);
    }
  }

  /** Hands a packet to the session and to loss recovery. */
  #send(packet: PackedPacket | undefined, isProbe: boolean): void {
    if (packet === undefined) return;
    const h = this.host;
    const { sent, bytes } = packet;
    try {
      h.session.send(bytes);
    } catch (e) {
      if (e instanceof DatagramTooLargeError) {
        if (isProbe) h.pmtu.onProbeLost(sent.size, true);
        else {
          h.pmtu.onSizeRefused(e.max);
          h.cc.setMaxDatagramSize(h.datagramSize());
          this.events.requeueFrames(sent.frames);
        }
        return;
      }
      if (e instanceof SessionClosedError) {
        this.events.onSessionClosed(e.message);
        return;
      }
      throw e;
    }
    this.packetsSent++;
    h.recovery.onPacketSent(sent);
    if (sent.inFlight) this.pacer.onPacketSent(sent.timeSent, sent.size);
  }

  /** Sent twice: it is never retransmitted, and a lost one leaves the peer only its idle timeout. */
  sendConnectionClose(code: number, reason: string): void {
    const h = this.host;
    for (let i = 0; i < 2; i++) {
      const packet = this.packer.packConnectionClose(h.clock.now(), h.datagramSize(), code, reason);
      try {
        h.session.send(packet);
      } catch {
        return; // the session is gone or refuses: the peer's idle timeout will do
      }
    }
  }
}
