/** Composition step: the Prometheus registry over the server's parts, and its listener when asked for. */
import type { ServerConfig } from "../config/server_config.ts";
import { createMetrics, type Metrics, serveMetrics } from "../metrics/metrics.ts";
import type { AuthGuard } from "../admin/auth_guard.ts";
import type { DtlsServer } from "../dtls/server.ts";
import type { SessionRegistry } from "../proxy/registry.ts";
import type { Certificates } from "./certificates.ts";

export interface MetricsOptions {
  registry: SessionRegistry;
  dtls: DtlsServer;
  authGuard: AuthGuard;
  certificates: Certificates;
}

/** The server's metrics, and the /metrics listener when HOP_METRICS_LISTEN is set. */
export interface ServerMetrics {
  metrics: Metrics;
  server?: Deno.HttpServer<Deno.NetAddr>;
}

/** Creates the metrics registry and starts its listener (if configured). */
export function startMetrics(config: ServerConfig, o: MetricsOptions): ServerMetrics {
  const { registry, dtls } = o;
  const { acme } = o.certificates;
  const metrics = createMetrics({
    sessions: () =>
      registry.list().map((s) => ({
        id: s.id,
        domain: s.domain,
        carrier: s.carrier ?? "udp",
        stats: s.connection.stats(),
      })),
    handshakes: () => ({
      succeeded: dtls.stats().handshakesCompleted,
      failed: dtls.stats().handshakesFailed,
      rateLimited: dtls.stats().handshakesRateLimited,
      evicted: dtls.stats().handshakesEvicted,
    }),
    adminAuth: () => o.authGuard.stats(),
    certificates: acme ? () => acme.certificates() : undefined,
  });
  return { metrics, server: config.metricsListen ? serveMetrics(metrics, config.metricsListen) : undefined };
}
