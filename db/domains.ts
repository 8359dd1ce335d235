/** The domains table behind the admin API and the tunnel's PSK lookup. */
import { and, asc, eq, isNotNull, isNull, or, sql } from "drizzle-orm";
import type { Db } from "./open.ts";
import { type DomainRow, domains } from "./schema.ts";
import type { KeySealer } from "./key_seal.ts";

/** A domain as the admin API shows it: never with its key. */
export interface DomainInfo {
  id: string;
  domain: string;
  memo: string;
  created_at: string;
  updated_at: string;
}

export interface IssuedDomain extends DomainInfo {
  client_api_key: string;
}

export class DomainTakenError extends Error {
  readonly code = "DOMAIN_TAKEN";
  constructor(readonly domain: string) {
    super(`domain ${domain} is already registered`);
  }
}

/** 32 random bytes as 64 lower-case hex characters. */
export function newClientApiKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function info(row: DomainRow): DomainInfo {
  return {
    id: row.id,
    domain: row.domain,
    memo: row.memo,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

function isUniqueViolation(e: unknown): boolean {
  for (let err = e as { code?: string; cause?: unknown } | undefined; err; err = err.cause as typeof err) {
    if (err.code === "23505") return true;
  }
  return false;
}

export interface DomainStore {
  register(domain: string, memo: string): Promise<IssuedDomain>;
  list(): Promise<DomainInfo[]>;
  get(domain: string): Promise<DomainInfo | null>;
  /** The domain's key, for the DTLS PSK lookup and the legacy unregister call. */
  clientKey(domain: string): Promise<string | null>;
  /** Whether `key` is the domain's key, compared through the keyed lookup (no decryption). */
  keyMatches(domain: string, key: string): Promise<boolean>;
  remove(domain: string): Promise<boolean>;
  rotateKey(domain: string): Promise<IssuedDomain | null>;
  /**
   * Start-up: seals the plain-text keys older versions stored (and clears them), then checks that a
   * sealed key opens with this secret. Returns how many rows were sealed.
   */
  sealLegacyKeys(): Promise<number>;
}

/** The store over a drizzle database; client keys are sealed under `sealer` (db/key_seal.ts). */
export function createDomainStore(db: Db, sealer: KeySealer): DomainStore {
  const sealedKey = (domain: string, key: string) => ({
    clientApiKey: null,
    clientKeyHash: sealer.lookup(key),
    clientKeySealed: sealer.seal(domain, key),
  });
  return {
    async register(domain, memo) {
      const key = newClientApiKey();
      try {
        const [row] = await db.insert(domains).values({ domain, memo, ...sealedKey(domain, key) })
          .returning();
        return { ...info(row), client_api_key: key };
      } catch (e) {
        if (isUniqueViolation(e)) throw new DomainTakenError(domain);
        throw e;
      }
    },
    async list() {
      const rows = await db.select().from(domains).orderBy(asc(domains.domain));
      return rows.map(info);
    },
    async get(domain) {
      const [row] = await db.select().from(domains).where(eq(domains.domain, domain));
      return row ? info(row) : null;
    },
    async clientKey(domain) {
      const [row] = await db.select({ sealed: domains.clientKeySealed }).from(domains).where(
        eq(domains.domain, domain),
      );
      return row?.sealed ? sealer.open(domain, row.sealed) : null;
    },
    async keyMatches(domain, key) {
      const [row] = await db.select({ id: domains.id }).from(domains).where(
        and(eq(domains.domain, domain), eq(domains.clientKeyHash, sealer.lookup(key))),
      );
      return row !== undefined;
    },
    async remove(domain) {
      const rows = await db.delete(domains).where(eq(domains.domain, domain)).returning({ id: domains.id });
      return rows.length > 0;
    },
    async rotateKey(domain) {
      const key = newClientApiKey();
      const [row] = await db.update(domains)
        .set({ ...sealedKey(domain, key), updatedAt: new Date() })
        .where(eq(domains.domain, domain))
        .returning();
      return row ? { ...info(row), client_api_key: key } : null;
    },
    async sealLegacyKeys() {
      const legacy = await db.select({ domain: domains.domain, key: domains.clientApiKey }).from(domains)
        .where(or(isNotNull(domains.clientApiKey), isNull(domains.clientKeySealed)));
      let sealed = 0;
      for (const row of legacy) {
        // A row with neither (impossible through this store) gets a fresh key: better than none.
        const key = row.key ?? newClientApiKey();
        await db.update(domains).set(sealedKey(row.domain, key)).where(eq(domains.domain, row.domain));
        sealed++;
      }
      const [probe] = await db.select({ domain: domains.domain, sealed: domains.clientKeySealed }).from(
        domains,
      )
        .where(isNotNull(domains.clientKeySealed)).limit(1);
      if (probe?.sealed) sealer.open(probe.domain, probe.sealed); // throws KeySealError on a wrong secret
      if (sealed > 0) {
        // The old plain-text tuples stay in the heap until vacuumed; rewrite the table without them.
        await db.execute(sql`vacuum full domains`).catch(() => {});
      }
      return sealed;
    },
  };
}
