/**
 * The client's life: dial the server over DTLS, say HELLO, serve the streams the server opens,
 * and when the tunnel drops, dial again with exponential backoff and jitter. Only a rejected key
 * ends it (KeyRejectedError); a stop signal ends it gracefully.
 */
import { connectDtls } from "../dtls/client.ts";
import { DtlsAuthError } from "../dtls/errors.ts";
import type { DatagramSession } from "../dtls/session.ts";
import { pskFromApiKey } from "../dtls/psk.ts";
import type { Logger } from "../log/logger.ts";
import { createConnection } from "../transport/connection.ts";
import type { TransportConnection } from "../transport/types.ts";
import type { ConnectionOptions } from "../transport/connection_options.ts";
import { handleStream } from "./client_forward.ts";
import { type ControlChannel, HandshakeRejectedError, openControl } from "./control.ts";
import type { HostMode, LocalService, ServedRequest } from "./local_target.ts";

export interface TunnelClientOptions {
  server: { hostname: string; port: number };
  domain: string;
  /** The client API key, 64 hex characters: the DTLS PSK. */
  apiKey: string;
  services: LocalService[];
  hostMode: HostMode;
  clientVersion: string;
  logger: Logger;
  signal: AbortSignal;
  /** Called each time the tunnel is up, with the public URL. */
  onConnected?(publicUrl: string, sessionId: string, connection: TransportConnection): void;
  onRequest?(info: ServedRequest): void;
  /** Backoff bounds (defaults 500 ms and 30 s). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Transport options for each session (e.g. a shorter idle timeout to notice a dead server). */
  connectionOptions?: Pick<ConnectionOptions, "idleTimeoutMs" | "keepAliveMs">;
}

/** The server refused the key (or the domain): retrying cannot help. */
export class KeyRejectedError extends Error {
  readonly code = "KEY_REJECTED";
  constructor(message: string) {
    super(message);
    this.name = "KeyRejectedError";
  }
}

/** How long a stopping client lets its requests in progress finish. */
const DRAIN_MS = 10_000;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

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

/** Runs until the signal aborts (resolves) or the key is rejected (rejects with KeyRejectedError). */
export async function runTunnelClient(o: TunnelClientOptions): Promise<void> {
  const log = o.logger.child({ component: "tunnel", domain: o.domain });
  const initial = o.backoffInitialMs ?? 500;
  const max = o.backoffMaxMs ?? 30_000;
  let backoff = initial;
  const retryLater = async (why: string) => {
    // Full jitter keeps a fleet of clients from reconnecting in lockstep after a server restart.
    const wait = Math.round(backoff / 2 + Math.random() * backoff / 2);
    log.warn({ retry_in_ms: wait }, `${why}; reconnecting`);
    await sleep(wait, o.signal);
    backoff = Math.min(max, backoff * 2);
  };
  while (!o.signal.aborted) {
    let connection: TransportConnection;
    let session: DatagramSession;
    try {
      session = await connectDtls({
        hostname: o.server.hostname,
        port: o.server.port,
        identity: o.domain,
        psk: pskFromApiKey(o.apiKey),
        connectTimeoutMs: 2000,
        maxAttempts: 3,
        logger: o.logger,
        signal: o.signal,
      });
      connection = createConnection(session, { ...o.connectionOptions, role: "client", logger: log });
    } catch (e) {
      if (e instanceof DtlsAuthError) {
        throw new KeyRejectedError(
          `the server rejected the key for ${o.domain}: check HOP_CLIENT_DOMAIN and HOP_CLIENT_API_KEY (rotated or removed?)`,
        );
      }
      if (o.signal.aborted) break;
      await retryLater(`cannot reach ${o.server.hostname}:${o.server.port} (${(e as Error).message})`);
      continue;
    }
    const inFlight = new Set<Promise<void>>();
    connection.onStream((stream) => {
      const served: Promise<void> = handleStream(stream, {
        services: o.services,
        hostMode: o.hostMode,
        logger: log,
        onRequest: o.onRequest,
      }).finally(() => inFlight.delete(served));
      inFlight.add(served);
    });
    let control: ControlChannel;
    try {
      const opened = await openControl(connection, {
        clientVersion: o.clientVersion,
        services: o.services.map((s) => s.prefix),
      });
      control = opened.control;
      backoff = initial;
      log.info({ session: opened.welcome.sessionId, url: opened.welcome.publicUrl }, "tunnel up");
      o.onConnected?.(opened.welcome.publicUrl, opened.welcome.sessionId, connection);
    } catch (e) {
      connection.abort(0, "handshake failed");
      if (e instanceof HandshakeRejectedError) {
        if (e.code === "unknown_domain" || e.code === "unsupported_protocol") {
          throw new KeyRejectedError(e.message);
        }
      }
      await retryLater(`tunnel handshake failed (${(e as Error).message})`);
      continue;
    }
    const stop = async () => {
      // After GOODBYE the server routes nothing new here; the requests in progress may finish.
      await control.goodbye("the client is shutting down");
      if (inFlight.size > 0) log.info({ in_flight: inFlight.size }, "finishing requests before leaving");
      await Promise.race([Promise.allSettled([...inFlight]), delay(DRAIN_MS)]);
      await connection.close(0, "client shutdown");
    };
    const onAbort = () => {
      stop().catch(() => connection.abort(0, "client shutdown"));
    };
    o.signal.addEventListener("abort", onAbort);
    control.peerGoodbye.then((reason) => {
      if (reason !== null) log.warn({ reason }, "the server is closing the tunnel");
    });
    const info = await connection.closed;
    o.signal.removeEventListener("abort", onAbort);
    if (o.signal.aborted) {
      // Let the session's close_notify leave before the process exits.
      await Promise.race([session.closed, delay(500)]);
      break;
    }
    await retryLater(`tunnel closed (${info.kind}${info.reason ? `: ${info.reason}` : ""})`);
  }
}
