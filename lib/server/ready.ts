/** Composition step: the one `server ready` line, with every bound address (tests and scripts wait for it). */
import type { ServerConfig } from "../config/server_config.ts";
import { VERSION } from "../config/version.ts";
import type { Logger } from "../log/logger.ts";
import type { DtlsServer } from "../dtls/server.ts";
import type { Storage } from "./database.ts";
import type { Fronts } from "./fronts.ts";
import type { ServerMetrics } from "./metrics.ts";

export interface ReadyFacts {
  serverId: string;
  storage: Storage;
  fronts: Fronts;
  dtls: DtlsServer;
  metrics: ServerMetrics;
  /** `performance.now()` when start-up began. */
  started: number;
}

/** Logs `server ready` with the addresses, the TLS mode, the database and the start-up time. */
export function logReady(config: ServerConfig, logger: Logger, f: ReadyFacts): void {
  const { http, https, tunnelTls } = f.fronts;
  const { dtls } = f;
  const metricsServer = f.metrics.server;
  logger.child({ component: "server" }).info({
    version: VERSION,
    server_id: f.serverId,
    domain: config.domain,
    http: `${http.addr.hostname}:${http.addr.port}`,
    https: https ? `${https.addr.hostname}:${https.addr.port}` : null,
    dtls: `${dtls.addr.hostname}:${dtls.addr.port}`,
    tunnel_tcp: tunnelTls ? `${tunnelTls.addr.hostname}:${tunnelTls.addr.port}` : null,
    metrics: metricsServer ? `${metricsServer.addr.hostname}:${metricsServer.addr.port}` : null,
    tls_mode: config.tlsMode,
    database: f.storage.database.kind,
    domains: f.storage.domains.size,
    ca: config.tlsMode === "self-signed" ? `${config.dataDir}/tls/ca.crt` : null,
    startup_ms: Math.round(performance.now() - f.started),
  }, "server ready");
}
