/** Composition step: the orderly shutdown, in the reverse order of start-up. */
import type { Logger } from "../log/logger.ts";
import type { DtlsServer } from "../dtls/server.ts";
import type { Gateway } from "../proxy/gateway.ts";
import type { SessionRegistry } from "../proxy/registry.ts";
import type { Storage } from "./database.ts";
import type { Certificates } from "./certificates.ts";
import type { DomainParts } from "./domains.ts";
import type { OwnApp } from "./own_app.ts";
import type { ServerMetrics } from "./metrics.ts";
import type { Fronts } from "./fronts.ts";
import type { ClusterSlot } from "./cluster.ts";

/** Shutdown lets in-flight requests finish for this long. */
export const DRAIN_MS = 10_000;

export interface ServerParts {
  storage: Storage;
  certificates: Certificates;
  registry: SessionRegistry;
  dtls: DtlsServer;
  domains: DomainParts;
  ownApp: OwnApp;
  metrics: ServerMetrics;
  gateway: Gateway;
  fronts: Fronts;
  cluster: ClusterSlot;
  logger: Logger;
}

/**
 * The server's shutdown: readiness says "stopping", no new domain changes, the fronts stop accepting
 * while in-flight requests drain (at most DRAIN_MS), tunnels say GOODBYE, then everything closes.
 * Runs once; later calls get the same promise.
 */
export function shutdownSequence(p: ServerParts): (reason?: string) => Promise<void> {
  const log = p.logger.child({ component: "server" });
  let stopped: Promise<void> | undefined;
  return (reason = "shutdown") => {
    stopped ??= (async () => {
      p.ownApp.stopping();
      p.certificates.acme?.close();
      await p.domains.sync.close();
      log.info({ reason, in_flight: p.gateway.inFlight() }, "server stopping");
      const fronts = p.fronts.all;
      const closing = fronts.map((f) => f.close());
      await p.gateway.drained(DRAIN_MS);
      await p.registry.closeAll("the server is shutting down");
      await p.cluster.presence?.close();
      await p.dtls.close();
      await p.fronts.tunnelTls?.close();
      for (const f of fronts) f.destroyConnections();
      await Promise.all(closing);
      p.domains.close();
      await p.metrics.server?.shutdown();
      await p.storage.database.close();
      log.info({}, "server stopped");
    })();
    return stopped;
  };
}
