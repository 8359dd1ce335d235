/**
 * The domain_policies table: each domain's access rules as the admin API stored them (passwords as
 * bcrypt hashes only). Listeners hear of every change made through this store, so the server that
 * made it applies it at once; other servers learn of it through the cross-server notification.
 */
import { asc, eq } from "drizzle-orm";
import type { Db } from "./open.ts";
import { domainPolicies } from "./schema.ts";

/** A header rule: headers added (set, replacing any of that name) and names removed. */
export interface StoredHeaderRules {
  add?: Record<string, string>;
  remove?: string[];
}

/** A domain's policy as stored; every field optional. */
export interface StoredPolicy {
  basic_auth?: { username: string; password_hash: string }[];
  ip_allow?: string[];
  ip_deny?: string[];
  rate_limit?: { per_second: number; burst: number };
  request_headers?: StoredHeaderRules;
  response_headers?: StoredHeaderRules;
}

export interface PolicyRecord {
  domain: string;
  policy: StoredPolicy;
  updated_at: string;
}

/** What changed: the new policy, or null when it was removed. */
export type PolicyChange = { domain: string; policy: StoredPolicy | null };

export interface PolicyStore {
  load(domain: string): Promise<PolicyRecord | null>;
  all(): Promise<PolicyRecord[]>;
  /** Replaces the domain's policy (the domain must be registered: a foreign key). */
  put(domain: string, policy: StoredPolicy): Promise<PolicyRecord>;
  /** Removes it; false when there was none. */
  remove(domain: string): Promise<boolean>;
  /** Called after each put/remove through this store; returns the unsubscribe function. */
  onChange(listener: (change: PolicyChange) => void): () => void;
}

/** The store over a drizzle database. */
export function createPolicyStore(db: Db): PolicyStore {
  const listeners = new Set<(change: PolicyChange) => void>();
  const notify = (change: PolicyChange) => {
    for (const l of listeners) {
      try {
        l(change);
      } catch { /* one listener's failure must not hide the change from the others */ }
    }
  };
  const record = (row: typeof domainPolicies.$inferSelect): PolicyRecord => ({
    domain: row.domain,
    policy: row.policy as StoredPolicy,
    updated_at: row.updatedAt.toISOString(),
  });
  return {
    async load(domain) {
      const [row] = await db.select().from(domainPolicies).where(eq(domainPolicies.domain, domain));
      return row ? record(row) : null;
    },
    async all() {
      const rows = await db.select().from(domainPolicies).orderBy(asc(domainPolicies.domain));
      return rows.map(record);
    },
    async put(domain, policy) {
      const now = new Date();
      const [row] = await db.insert(domainPolicies).values({ domain, policy, updatedAt: now })
        .onConflictDoUpdate({ target: domainPolicies.domain, set: { policy, updatedAt: now } })
        .returning();
      notify({ domain, policy });
      return record(row);
    },
    async remove(domain) {
      const rows = await db.delete(domainPolicies).where(eq(domainPolicies.domain, domain))
        .returning({ domain: domainPolicies.domain });
      if (rows.length > 0) notify({ domain, policy: null });
      return rows.length > 0;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
