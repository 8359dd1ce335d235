/**
 * One tunnel on the client: a dialed session becomes a transport connection with the client's
 * liveness settings, the control stream says HELLO, the streams the server opens are served, and
 * the session's stale-session hints start path probes. Retiring says GOODBYE and lets the
 * requests in progress finish before closing.
 */
import type { DatagramSession } from "../dtls/session.ts";
import type { Logger } from "../log/logger.ts";
import { Connection } from "../transport/connection.ts";
import type { TransportConnection } from "../transport/types.ts";
import type { Carrier, Dialed } from "./carrier_dial.ts";
import { handleStream } from "./client_forward.ts";
import type { ExchangeObserver } from "./exchange_observer.ts";
import { type ControlChannel, HandshakeRejectedError, openControl } from "./control.ts";
import type { HostMode, LocalService, ServedRequest } from "./local_target.ts";
import { watchPath } from "./path_probe.ts";
import { InFlight } from "./in_flight.ts";

/** Keep-alive PING after this much silence: with the idle timeout, three chances per window. */
export const CLIENT_KEEPALIVE_MS = 1500;
/** A path that returns nothing for this long is dead (the bound is 5 s). */
export const CLIENT_IDLE_TIMEOUT_MS = 4500;
/**
 * One early PING when a server that was talking steadily falls silent this long: a client held back by
 * flow control after a NAT rebinding hears nothing, and finds out only when it sends (Liveness).
 */
export const CLIENT_QUIET_PROBE_MS = 150;
/** Shortest wait for an answer to a path probe. */
const PROBE_MIN_MS = 500;
/** How long a stopping (or moving) client lets its requests in progress finish. */
const DRAIN_MS = 10_000;
/** After GOODBYE, streams the server opened just before reading it may still arrive. */
const GOODBYE_SETTLE_MS = 500;

/** The server refused the key (or the domain): retrying cannot help. */
export class KeyRejectedError extends Error {
  readonly code = "KEY_REJECTED";
  constructor(message: string) {
    super(message);
    this.name = "KeyRejectedError";
  }
}

export interface Tunnel {
  session: DatagramSession;
  carrier: Carrier;
  connection: TransportConnection;
  control: ControlChannel;
  sessionId: string;
  publicUrl: string;
  /** Requests being served on this tunnel. */
  inFlight: InFlight;
}

export interface OpenTunnelOptions {
  domain: string;
  services: LocalService[];
  hostMode: HostMode;
  clientVersion: string;
  log: Logger;
  onRequest?(info: ServedRequest): void;
  observer?: ExchangeObserver;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Opens a tunnel over a dialed session; throws KeyRejectedError when the server refuses the domain. */
export async function openTunnel(dialed: Dialed, o: OpenTunnelOptions): Promise<Tunnel> {
  const watched = watchPath(dialed.session);
  const connection = new Connection(watched.session, {
    role: "client",
    logger: o.log,
    keepAliveMs: CLIENT_KEEPALIVE_MS,
    idleTimeoutMs: CLIENT_IDLE_TIMEOUT_MS,
    quietProbeMs: CLIENT_QUIET_PROBE_MS,
  });
  const inFlight = new InFlight();
  const serveOptions = {
    services: o.services,
    hostMode: o.hostMode,
    logger: o.log,
    onRequest: o.onRequest,
    observer: o.observer,
  };
  connection.onStream((stream) => inFlight.track(handleStream(stream, serveOptions)));
  let opened;
  try {
    opened = await openControl(connection, {
      clientVersion: o.clientVersion,
      services: o.services.map((s) => s.prefix),
    });
  } catch (e) {
    connection.abort(0, "handshake failed");
    if (
      e instanceof HandshakeRejectedError &&
      (e.code === "unknown_domain" || e.code === "unsupported_protocol")
    ) {
      throw new KeyRejectedError(e.message);
    }
    throw new Error(`tunnel handshake failed (${(e as Error).message})`, { cause: e });
  }
  const control = opened.control;
  const disarm = watched.arm({
    nudge: () => control.nudge(),
    onDead: (reason) => {
      o.log.warn({ carrier: dialed.carrier }, reason);
      connection.abort(0, reason);
    },
    deadlineMs: () => Math.max(PROBE_MIN_MS, 4 * connection.stats().smoothedRttMs),
  });
  connection.closed.then(disarm, disarm);
  control.peerGoodbye.then((reason) => {
    if (reason !== null) o.log.warn({ reason }, "the server is closing the tunnel");
  });
  return {
    session: dialed.session,
    carrier: dialed.carrier,
    connection,
    control,
    sessionId: opened.welcome.sessionId,
    publicUrl: opened.welcome.publicUrl,
    inFlight,
  };
}

/** GOODBYE (the server routes nothing new here), then the requests in progress finish, then close. */
export async function retireTunnel(t: Tunnel, reason: string, log: Logger): Promise<void> {
  await t.control.goodbye(reason);
  await delay(GOODBYE_SETTLE_MS);
  if (t.inFlight.size > 0) log.info({ in_flight: t.inFlight.size }, "finishing requests before leaving");
  const deadline = Date.now() + DRAIN_MS;
  // Loop: a stream the server opened just before reading GOODBYE joins inFlight late.
  while (t.inFlight.size > 0 && Date.now() < deadline) {
    await t.inFlight.drained(Math.max(0, deadline - Date.now()));
  }
  await t.connection.close(0, reason);
}
