/**
 * Keeps every server sharing a database in step: a change made here is applied here and published;
 * a change published by another server is applied here within the notification's latency; after a
 * lost notification connection the whole domain list is compared (resync).
 */
import type { Database } from "../../db/open.ts";
import type { DomainStore } from "../../db/domains.ts";
import { type ChangeFeed, type ChangeKind, openChangeFeed } from "../../db/notify.ts";
import type { Logger } from "../log/logger.ts";
import type { DomainLifecycle } from "./domain_lifecycle.ts";

export interface DomainSyncOptions {
  database: Pick<Database, "db" | "changes">;
  store: Pick<DomainStore, "get" | "list">;
  lifecycle: DomainLifecycle;
  serverId: string;
  logger: Logger;
}

export interface DomainSync {
  /** Admin hook: a domain was registered here. */
  domainAdded(domain: string): Promise<void>;
  /** Admin hook: a domain was removed or its key rotated here. */
  domainChanged(domain: string, change: "removed" | "key_rotated"): Promise<void>;
  /** This server stored a new certificate for the host. */
  certificateIssued(hostname: string): void;
  /** A domain's policy changed here. */
  policyChanged(domain: string): void;
  feed: ChangeFeed;
  close(): Promise<void>;
}

/** Starts listening for other servers' changes. */
export function startDomainSync(o: DomainSyncOptions): DomainSync {
  const log = o.logger.child({ component: "domains" });
  const stampOf = async (domain: string) => (await o.store.get(domain).catch(() => null))?.updated_at;
  const feed = openChangeFeed({
    source: o.database.changes,
    db: o.database.db,
    serverId: o.serverId,
    logger: o.logger,
    async onChange(change) {
      const stamp = change.kind === "domain_added" || change.kind === "key_rotated"
        ? await stampOf(change.domain)
        : undefined;
      // A registration whose row is gone again (removed meanwhile) is not served.
      if (change.kind === "domain_added" && stamp === undefined) return;
      log.debug({ kind: change.kind, domain: change.domain, from: change.server }, "change received");
      await o.lifecycle.apply(change.kind, change.domain, stamp);
    },
    async onListening() {
      await o.lifecycle.resync(await o.store.list());
    },
  });
  const publish = async (kind: ChangeKind, domain: string) => {
    try {
      await feed.publish(kind, domain);
    } catch (e) {
      // The other servers catch up at their next resync (or the certificate refresh).
      log.warn({ kind, domain, err: (e as Error).message }, "publishing a change failed");
    }
  };
  const local = async (kind: ChangeKind, domain: string) => {
    await o.lifecycle.apply(kind, domain, await stampOf(domain));
    await publish(kind, domain);
  };
  return {
    domainAdded: (domain) => local("domain_added", domain),
    domainChanged: (domain, change) => local(change === "removed" ? "domain_removed" : "key_rotated", domain),
    certificateIssued(hostname) {
      void publish("certificate_renewed", hostname);
    },
    policyChanged(domain) {
      // This server's policy book follows its own store already: only the others are told.
      void publish("policy_changed", domain);
    },
    feed,
    close: () => feed.close(),
  };
}
