/**
 * Composition step: what follows a domain's changes. The policy book, the domain lifecycle (a domain
 * added, removed or re-keyed on this server) and the cross-server sync that feeds it.
 */
import type { Logger } from "../log/logger.ts";
import { createPolicyStore, type PolicyStore } from "../../db/policies.ts";
import type { DtlsServer } from "../dtls/server.ts";
import type { SessionRegistry } from "../proxy/registry.ts";
import { createDomainLifecycle } from "../proxy/domain_lifecycle.ts";
import { type DomainSync, startDomainSync } from "../proxy/domain_sync.ts";
import { createPolicyBook, type PolicyBook } from "../proxy/policy_book.ts";
import type { Storage } from "./database.ts";
import type { Certificates } from "./certificates.ts";

export interface DomainParts {
  policyStore: PolicyStore;
  policies: PolicyBook;
  sync: DomainSync;
  /** Stops the policy store's change listener, then the book. */
  close(): void;
}

export interface DomainOptions {
  storage: Storage;
  certificates: Certificates;
  registry: SessionRegistry;
  dtls: DtlsServer;
  serverId: string;
  logger: Logger;
}

/** Loads the policies and starts following domain changes, here and on the other servers. */
export async function startDomains(o: DomainOptions): Promise<DomainParts> {
  const { database, store, domains, listed } = o.storage;
  const { certs, acme } = o.certificates;
  const policyStore = createPolicyStore(database.db);
  const policies = await createPolicyBook(policyStore, { logger: o.logger });
  const lifecycle = createDomainLifecycle({
    domains,
    closeSessions: (domain, reason) => o.registry.closeDomain(domain, reason),
    closeCarriers: (domain, reason) => o.dtls.closeSessions(domain, reason),
    certificates: certs,
    acme,
    policyChanged: (domain) => policies.reload(domain),
    logger: o.logger,
  }, listed);
  const sync = startDomainSync({ database, store, lifecycle, serverId: o.serverId, logger: o.logger });
  // Policy changes made here reach the other servers (their books reload the domain's rules).
  const unfollowPolicies = policyStore.onChange((c) => sync.policyChanged(c.domain));
  return {
    policyStore,
    policies,
    sync,
    close() {
      unfollowPolicies();
      policies.close();
    },
  };
}
