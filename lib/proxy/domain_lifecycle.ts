/**
 * What a server does when a domain changes, whether the change was made here (admin API) or on
 * another server sharing the database (a notification, or a resynchronisation after the
 * notification connection dropped):
 *   added → served, its certificate ordered (once across servers: the ACME store holds a lease);
 *   removed → no longer served, sessions closed, certificate forgotten;
 *   key rotated → sessions closed (their clients hold the old key);
 *   certificate renewed → the new certificate loaded from the database.
 */
import type { ChangeKind } from "../../db/notify.ts";
import type { Logger } from "../log/logger.ts";

/** A domain as the store lists it; `updated_at` changes when its key is rotated. */
export interface DomainStamp {
  domain: string;
  updated_at: string;
}

export interface DomainLifecycleDeps {
  /** The served domains: the lifecycle adds and deletes, everything else reads. */
  domains: Set<string>;
  /** Closes a domain's tunnel sessions (saying GOODBYE); returns how many. */
  closeSessions(domain: string, reason: string): Promise<number>;
  /** Closes a domain's carrier sessions (DTLS) that carry no tunnel yet. */
  closeCarriers?(domain: string, reason: string): void;
  /** The certificate store, when TLS is on. */
  certificates?: { forget(domain: string): Promise<void> };
  /** The ACME store: `added` orders a certificate unless one is stored, or loads the stored one. */
  acme?: { added(domain: string): Promise<void> };
  /** A domain's policy may have changed: reload it (also called when a domain comes or goes). */
  policyChanged?(domain: string): void | Promise<void>;
  logger: Logger;
}

export interface DomainLifecycle {
  /** Applies one change to this server. */
  apply(kind: ChangeKind, domain: string, stamp?: string): Promise<void>;
  /** Brings this server in line with the whole domain list (after missing notifications). */
  resync(current: DomainStamp[]): Promise<{ added: number; removed: number; rotated: number }>;
}

/** The lifecycle over a server's parts; `initial` is the domain list it started with. */
export function createDomainLifecycle(deps: DomainLifecycleDeps, initial: DomainStamp[]): DomainLifecycle {
  const log = deps.logger.child({ component: "domains" });
  const stamps = new Map(initial.map((d) => [d.domain, d.updated_at]));

  const closeAll = async (domain: string, reason: string) => {
    const closed = await deps.closeSessions(domain, reason);
    deps.closeCarriers?.(domain, reason);
    return closed;
  };

  async function apply(kind: ChangeKind, domain: string, stamp?: string): Promise<void> {
    switch (kind) {
      case "domain_added": {
        const known = deps.domains.has(domain);
        deps.domains.add(domain);
        if (stamp) stamps.set(domain, stamp);
        if (!known) {
          await deps.acme?.added(domain);
          // A domain registered again must not keep its previous registration's rules.
          await deps.policyChanged?.(domain);
        }
        log.info({ domain, change: kind }, "domain served");
        return;
      }
      case "domain_removed": {
        deps.domains.delete(domain);
        stamps.delete(domain);
        await deps.certificates?.forget(domain);
        await deps.policyChanged?.(domain);
        const closed = await closeAll(domain, "the domain was removed on the server");
        log.info({ domain, change: kind, sessions_closed: closed }, "domain changed");
        return;
      }
      case "key_rotated": {
        if (stamp) stamps.set(domain, stamp);
        const closed = await closeAll(domain, "the client key was rotated");
        log.info({ domain, change: kind, sessions_closed: closed }, "domain changed");
        return;
      }
      case "certificate_renewed":
        await deps.acme?.added(domain);
        return;
      case "policy_changed":
        await deps.policyChanged?.(domain);
        return;
    }
  }

  return {
    apply,
    async resync(current) {
      const now = new Map(current.map((d) => [d.domain, d.updated_at]));
      let added = 0, removed = 0, rotated = 0;
      for (const domain of [...deps.domains]) {
        if (!now.has(domain)) {
          await apply("domain_removed", domain);
          removed++;
        }
      }
      for (const [domain, stamp] of now) {
        if (!deps.domains.has(domain)) {
          await apply("domain_added", domain, stamp);
          added++;
        } else if (stamps.has(domain) && stamps.get(domain) !== stamp) {
          await apply("key_rotated", domain, stamp);
          rotated++;
        } else stamps.set(domain, stamp);
      }
      if (added + removed + rotated > 0) log.info({ added, removed, rotated }, "domains resynchronised");
      return { added, removed, rotated };
    },
  };
}
