/** Composition step: the server's own app on its own domain (health, readiness, the admin API). */
import { AsyncLocalStorage } from "node:async_hooks";
import { Hono } from "hono";
import type { ServerConfig } from "../config/server_config.ts";
import type { Logger } from "../log/logger.ts";
import type { PolicyStore } from "../../db/policies.ts";
import { type AuthGuard, createAuthGuard } from "../admin/auth_guard.ts";
import { createApiRoutes } from "../admin/app.ts";
import type { SessionRegistry } from "../proxy/registry.ts";
import type { DomainSync } from "../proxy/domain_sync.ts";
import { clusterAdminHooks, type ClusterPresence } from "../proxy/cluster_presence.ts";
import { errorResponse } from "../pages/mod.ts";
import type { Storage } from "./database.ts";
import type { Certificates } from "./certificates.ts";

export interface OwnAppOptions {
  storage: Storage;
  certificates: Certificates;
  policyStore: PolicyStore;
  sync: DomainSync;
  registry: SessionRegistry;
  serverId: string;
  /** The cluster presence, once started (the fronts start before it). */
  presence(): ClusterPresence | undefined;
  logger: Logger;
}

export interface OwnApp {
  /** Serves one request for the server's own domain from the given peer address. */
  fetch(request: Request, remoteAddr: string): Response | Promise<Response>;
  /** The admin API's failed-bearer guard (its counters are metrics). */
  authGuard: AuthGuard;
  /** From now on /readyz answers 503 "stopping". */
  stopping(): void;
}

/** Builds the own domain's Hono app: /healthz, /readyz and the admin API under /api/v1. */
export function createOwnApp(config: ServerConfig, o: OwnAppOptions): OwnApp {
  const { database, store } = o.storage;
  const { acme } = o.certificates;
  const { registry, sync, logger } = o;
  // The admin API rate-limits by peer address, which only the front knows: carried in async context.
  const peer = new AsyncLocalStorage<string>();
  const authGuard = createAuthGuard({ logger });

  let stopping = false;
  const own = new Hono();
  own.get("/healthz", (c) => c.json({ status: "ok" }));
  own.get(
    "/readyz",
    (c) =>
      stopping
        ? c.json({ status: "stopping" }, 503)
        : c.json({ status: "ready", database: database.kind, sessions: registry.count() }),
  );
  own.route(
    "/api/v1",
    createApiRoutes({
      store,
      policies: o.policyStore,
      adminApiKey: config.adminApiKey,
      serverDomain: config.domain,
      logger,
      guard: authGuard,
      clientAddress: () => peer.getStore() ?? "",
      hooks: {
        ...(acme
          ? {
            certificate: (domain: string) => acme.state(domain),
            renewCertificate: (domain: string) => acme.renew(domain),
          }
          : {}),
        ...clusterAdminHooks({ registry, serverId: o.serverId, presence: o.presence, logger }),
        domainAdded: (domain) => sync.domainAdded(domain),
        domainChanged: (domain, change) => sync.domainChanged(domain, change),
      },
    }),
  );
  own.notFound((c) =>
    errorResponse(404, "not_found", `Nothing at ${c.req.path}.`, c.req.raw, crypto.randomUUID())
  );
  return {
    fetch: (request, remoteAddr) => peer.run(remoteAddr, () => own.fetch(request)),
    authGuard,
    stopping: () => {
      stopping = true;
    },
  };
}
