/** Connection options and the flow-control values both ends assume before the peer says otherwise. */
import { setImmediate } from "node:timers";
import { type Clock, systemClock } from "../log/clock.ts";
import { type Logger, silentLogger } from "../log/logger.ts";
import { type CongestionController, NewReno } from "./congestion.ts";

/** Stream credit each side assumes for a new stream until MAX_STREAM_DATA says more. */
export const INITIAL_STREAM_WINDOW = 512 * 1024;
/** Connection credit each side assumes until MAX_DATA says more. */
export const INITIAL_CONNECTION_WINDOW = 1024 * 1024;

export interface ConnectionOptions {
  role: "client" | "server";
  clock?: Clock;
  logger?: Logger;
  /** Close when nothing arrives for this long (default 30 000 ms). */
  idleTimeoutMs?: number;
  /** PING after this long without receiving anything (default 10 000 ms; 0 disables). */
  keepAliveMs?: number;
  /**
   * One early PING after this much silence from a peer that was talking steadily (packets less than this
   * apart): a flow-controlled sender whose path changed hears nothing, and would otherwise wait for the
   * keep-alive to find out. 0 (the default) turns it off.
   */
  quietProbeMs?: number;
  /** Longest an ACK is delayed (default 10 ms); also advertised implicitly to the peer's PTO. */
  maxAckDelayMs?: number;
  /** ACK after this many ack-eliciting packets (default 2). */
  ackElicitingThreshold?: number;
  /** RTT assumed before the first sample (default 100 ms). */
  initialRttMs?: number;
  /** Initial connection receive window, at least INITIAL_CONNECTION_WINDOW (default 1.5 MiB). */
  connectionReceiveWindow?: number;
  /** Auto-tuning ceilings (defaults 6 MiB per stream, 15 MiB per connection). */
  maxStreamReceiveWindow?: number;
  maxConnectionReceiveWindow?: number;
  /**
   * Peer-initiated streams open at once (default 16 384). An idle stream costs ≈ 3.3 kB for both ends
   * (scripts/bench/stream_memory.ts), so long-lived requests (WebSockets) cannot starve short ones.
   */
  maxIncomingStreams?: number;
  /** Bytes a writer may run ahead of the peer's stream credit before write() waits (default 64 KiB). */
  sendSlack?: number;
  /** Longest a graceful close waits for pending data (default 5 000 ms). */
  closeTimeoutMs?: number;
  /** Probe for datagrams larger than 1200 bytes (default true). */
  pmtuDiscovery?: boolean;
  /**
   * Largest datagram discovery may try (default: the session's maxDatagramSize). Sockets here cannot set
   * the IP don't-fragment bit, so a probe may pass as IP fragments; cap this (e.g. 1452) on internet paths.
   */
  pmtuMaxSize?: number;
  /** Close the session when the connection closes (default true). */
  closeSessionOnClose?: boolean;
  /**
   * Runs a function on the next event-loop turn, for pacing finer than timers allow (default: setImmediate
   * with the system clock, none with an injected clock, whose timers are then used).
   */
  immediate?: ((fn: () => void) => void) | null;
  /** Congestion controller factory (default NewReno). */
  congestionController?: (maxDatagramSize: number) => CongestionController;
}

/** The options with every default applied, as the connection reads them. */
export interface ResolvedOptions {
  clock: Clock;
  logger: Logger;
  idleTimeoutMs: number;
  keepAliveMs: number;
  quietProbeMs: number;
  maxAckDelayMs: number;
  ackElicitingThreshold: number;
  initialRttMs: number;
  connectionReceiveWindow: number;
  maxConnectionReceiveWindow: number;
  maxStreamReceiveWindow: number;
  maxIncomingStreams: number;
  sendSlack: number;
  closeTimeoutMs: number;
  pmtuDiscovery: boolean;
  pmtuMaxSize: number;
  closeSessionOnClose: boolean;
  immediate: ((fn: () => void) => void) | undefined;
  congestionController: (maxDatagramSize: number) => CongestionController;
}

/** Applies the defaults documented on ConnectionOptions. */
export function resolveOptions(o: ConnectionOptions): ResolvedOptions {
  const clock = o.clock ?? systemClock;
  const connectionReceiveWindow = Math.max(
    o.connectionReceiveWindow ?? 1536 * 1024,
    INITIAL_CONNECTION_WINDOW,
  );
  return {
    clock,
    logger: o.logger ?? silentLogger,
    idleTimeoutMs: o.idleTimeoutMs ?? 30_000,
    keepAliveMs: o.keepAliveMs ?? 10_000,
    quietProbeMs: o.quietProbeMs ?? 0,
    maxAckDelayMs: o.maxAckDelayMs ?? 10,
    ackElicitingThreshold: o.ackElicitingThreshold ?? 2,
    initialRttMs: o.initialRttMs ?? 100,
    connectionReceiveWindow,
    maxConnectionReceiveWindow: Math.max(
      o.maxConnectionReceiveWindow ?? 15 * 1024 * 1024,
      connectionReceiveWindow,
    ),
    maxStreamReceiveWindow: Math.max(o.maxStreamReceiveWindow ?? 6 * 1024 * 1024, INITIAL_STREAM_WINDOW),
    maxIncomingStreams: o.maxIncomingStreams ?? 16_384,
    sendSlack: o.sendSlack ?? 64 * 1024,
    closeTimeoutMs: o.closeTimeoutMs ?? 5_000,
    pmtuDiscovery: o.pmtuDiscovery ?? true,
    pmtuMaxSize: o.pmtuMaxSize ?? Infinity,
    closeSessionOnClose: o.closeSessionOnClose ?? true,
    // Sub-millisecond pacing needs a next-turn hook; an injected clock drives its own timers instead.
    immediate: o.immediate === undefined
      ? (clock === systemClock ? setImmediate : undefined)
      : o.immediate ?? undefined,
    congestionController: o.congestionController ?? ((m) => new NewReno(m)),
  };
}
