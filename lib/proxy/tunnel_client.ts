/**
 * The client's life: dial the server (DTLS on UDP, or the TCP carrier; see carrier_dial.ts), say
 * HELLO, serve the streams the server opens, and when the tunnel drops, dial again at once and
 * then with exponential backoff and jitter. Only a rejected key (or, in `tcp` mode, an untrusted
 * certificate) ends it; a stop signal ends it gracefully.
 *
 * Liveness: the transport sends a keep-alive PING after CLIENT_KEEPALIVE_MS of silence and gives
 * up after CLIENT_IDLE_TIMEOUT_MS, so a dead path (server gone, NAT mapping lost) is noticed
 * within 5 s; the server's stale-session hint shortens that to a one-second probe.
 */
import { DtlsAuthError } from "../dtls/errors.ts";
import { CarrierCertificateError } from "../dtls/errors.ts";
import { pskFromApiKey } from "../dtls/psk.ts";
import type { Logger } from "../log/logger.ts";
import type { TransportConnection } from "../transport/types.ts";
import { type Carrier, CarrierDialer, type CarrierMode } from "./carrier_dial.ts";
import { openTunnel, retireTunnel, type Tunnel } from "./tunnel_open.ts";
import type { HostMode, LocalService, ServedRequest } from "./local_target.ts";

import type { ExchangeObserver } from "./exchange_observer.ts";
export { KeyRejectedError } from "./tunnel_open.ts";
import { KeyRejectedError } from "./tunnel_open.ts";

export interface TunnelClientOptions {
  server: { hostname: string; port: number };
  domain: string;
  /** The client API key, 64 hex characters: the PSK. */
  apiKey: string;
  services: LocalService[];
  hostMode: HostMode;
  clientVersion: string;
  logger: Logger;
  signal: AbortSignal;
  /** auto (UDP, falling back to TCP), udp or tcp (default auto). */
  transport?: CarrierMode;
  /** PEM of a private CA for the TCP carrier (HOP_CLIENT_CA_FILE). */
  caPem?: string;
  /** Certificate name when the server address is an IP literal (HOP_CLIENT_SERVER_NAME). */
  serverName?: string;
  /** First background UDP re-probe after an `auto` fallback to TCP (default 60 s). */
  udpReprobeMs?: number;
  /** Called each time a tunnel is up (also after a move between carriers). */
  onConnected?(publicUrl: string, sessionId: string, connection: TransportConnection, carrier: Carrier): void;
  onRequest?(info: ServedRequest): void;
  /** Sees every exchange (the request inspector). */
  observer?: ExchangeObserver;
  /** Backoff bounds (defaults 500 ms and 30 s). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
}

/** The server's certificate is not trusted and the client may use nothing else (`tcp` mode). */
export class CarrierTrustError extends Error {
  readonly code = "CARRIER_UNTRUSTED";
  constructor(message: string) {
    super(message);
    this.name = "CarrierTrustError";
  }
}

/** How long after a tunnel was last up reconnect attempts stay frequent. */
const RECENT_MS = 60_000;
const RECENT_BACKOFF_MAX_MS = 2000;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}

function trustMessage(e: CarrierCertificateError, o: TunnelClientOptions): string {
  return `${e.message}. Set HOP_CLIENT_CA_FILE to the PEM of the CA that signed the server's certificate ` +
    `(for a self-signed server: its data dir's tls/ca.crt)` +
    (o.serverName === undefined
      ? ", and HOP_CLIENT_SERVER_NAME when HOP_CLIENT_SERVER_ADDR is an IP address"
      : "");
}

/** Runs until the signal aborts (resolves) or the key is rejected (rejects with KeyRejectedError or CarrierTrustError). */
export async function runTunnelClient(o: TunnelClientOptions): Promise<void> {
  const log = o.logger.child({ component: "tunnel", domain: o.domain });
  const mode = o.transport ?? "auto";
  const initial = o.backoffInitialMs ?? 500;
  const max = o.backoffMaxMs ?? 30_000;
  const dialer = new CarrierDialer({
    mode,
    server: o.server,
    identity: o.domain,
    psk: pskFromApiKey(o.apiKey),
    caPem: o.caPem,
    serverName: o.serverName,
    udpReprobeMs: o.udpReprobeMs,
    logger: o.logger,
    signal: o.signal,
  });
  const tunnelOptions = { ...o, log };
  let backoff = initial;
  let lastUp = -Infinity;
  const retryLater = async (why: string) => {
    // Full jitter keeps a fleet of clients from reconnecting in lockstep after a server restart.
    const wait = Math.round(backoff / 2 + Math.random() * backoff / 2);
    log.warn({ retry_in_ms: wait }, `${why}; reconnecting`);
    await sleep(wait, o.signal);
    // Within a minute of a working tunnel the server is most likely restarting: keep trying
    // every 2 s at most, so the tunnel is back within seconds of it being ready.
    const cap = performance.now() - lastUp < RECENT_MS ? Math.min(max, RECENT_BACKOFF_MAX_MS) : max;
    backoff = Math.min(cap, backoff * 2);
  };
  while (!o.signal.aborted) {
    let tunnel: Tunnel;
    try {
      tunnel = await openTunnel(await dialer.dial(), tunnelOptions);
    } catch (e) {
      if (e instanceof DtlsAuthError) {
        throw new KeyRejectedError(
          `the server rejected the key for ${o.domain}: check HOP_CLIENT_DOMAIN and HOP_CLIENT_API_KEY (rotated or removed?)`,
        );
      }
      if (e instanceof KeyRejectedError) throw e;
      if (o.signal.aborted) break;
      if (e instanceof CarrierCertificateError) {
        if (mode === "tcp") throw new CarrierTrustError(trustMessage(e, o));
        log.error({ code: e.code }, trustMessage(e, o));
      }
      await retryLater(`cannot reach ${o.server.hostname}:${o.server.port} (${(e as Error).message})`);
      continue;
    }
    backoff = initial;
    const info = await serve(tunnel, dialer, mode, tunnelOptions);
    lastUp = performance.now();
    if (o.signal.aborted) break;
    // The tunnel was up: reconnect at once (a little jitter only), backoff starts over.
    const wait = Math.round(Math.random() * Math.min(initial, 250));
    log.warn({ retry_in_ms: wait }, `tunnel closed (${info}); reconnecting`);
    await sleep(wait, o.signal);
  }
}

type Options = TunnelClientOptions & { log: Logger };

/**
 * Serves a tunnel until it closes or the client stops; in `auto` mode on TCP, re-probes UDP in
 * the background and moves there (new tunnel first, then GOODBYE and drain of the old one).
 * Resolves with why the last tunnel closed.
 */
async function serve(first: Tunnel, dialer: CarrierDialer, mode: CarrierMode, o: Options): Promise<string> {
  let current = first;
  announce(current, o);
  let moved: (t: Tunnel) => void = () => {};
  const onAbort = () => {
    retireTunnel(current, "the client is shutting down", o.log).catch(() =>
      current.connection.abort(0, "client shutdown")
    );
  };
  o.signal.addEventListener("abort", onAbort);
  try {
    for (;;) {
      const tunnel = current;
      const next = new Promise<Tunnel>((resolve) => (moved = resolve));
      if (mode === "auto" && tunnel.carrier === "tcp") reprobe(tunnel, dialer, o, (t) => moved(t));
      const ended = tunnel.connection.closed.then((i) => `${i.kind}${i.reason ? `: ${i.reason}` : ""}`);
      const winner = await Promise.race([ended, next]);
      if (typeof winner === "string") {
        if (o.signal.aborted) {
          // Let the session's close (close_notify) leave before the process exits.
          await Promise.race([tunnel.session.closed, sleep(500, new AbortController().signal)]);
        }
        return winner;
      }
      current = winner;
      announce(current, o);
      o.log.info({ from: tunnel.carrier, to: winner.carrier }, "moved the tunnel to another carrier");
      retireTunnel(tunnel, `moving to ${winner.carrier}`, o.log).catch(() =>
        tunnel.connection.abort(0, "moved")
      );
    }
  } finally {
    o.signal.removeEventListener("abort", onAbort);
  }
}

/** Background UDP re-probes while `tunnel` (on TCP) lives; hands a working UDP tunnel to `onUdp`. */
function reprobe(tunnel: Tunnel, dialer: CarrierDialer, o: Options, onUdp: (t: Tunnel) => void): void {
  const gone = new AbortController();
  tunnel.connection.closed.then(() => gone.abort());
  o.signal.addEventListener("abort", () => gone.abort(), { once: true });
  (async () => {
    while (!gone.signal.aborted) {
      await sleep(dialer.nextReprobeMs(), gone.signal);
      if (gone.signal.aborted) return;
      const session = await dialer.probeUdp();
      if (session === null) {
        o.log.debug({}, "UDP still does not pass; staying on TCP");
        continue;
      }
      if (gone.signal.aborted) {
        session.close("not needed");
        return;
      }
      try {
        const udp = await openTunnel({ session, carrier: "udp" }, o);
        if (gone.signal.aborted) {
          // The TCP tunnel died meanwhile; the main loop is already dialing a replacement.
          await retireTunnel(udp, "not needed", o.log);
          return;
        }
        onUdp(udp);
        return;
      } catch (e) {
        o.log.warn(
          { err: (e as Error).message },
          "UDP passes again but the tunnel handshake failed; staying on TCP",
        );
      }
    }
  })().catch((e) => o.log.warn({ err: String(e) }, "UDP re-probe failed"));
}

function announce(t: Tunnel, o: Options): void {
  o.log.info({ session: t.sessionId, url: t.publicUrl, carrier: t.carrier }, "tunnel up");
  o.onConnected?.(t.publicUrl, t.sessionId, t.connection, t.carrier);
}
