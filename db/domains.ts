/** The domains table behind the admin API and the tunnel's PSK lookup. */
import { asc, eq } from "drizzle-orm";
import type { Db } from "./open.ts";
import { type DomainRow, domains } from "./schema.ts";

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
  remove(domain: string): Promise<boolean>;
  rotateKey(domain: string): Promise<IssuedDomain | null>;
}

/** The store over a drizzle database. */
export function createDomainStore(db: Db): DomainStore {
  return {
    async register(domain, memo) {
      try {
        const [row] = await db.insert(domains).values({ domain, memo, clientApiKey: newClientApiKey() })
          .returning();
        return { ...info(row), client_api_key: row.clientApiKey };
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
      const [row] = await db.select({ key: domains.clientApiKey }).from(domains).where(
        eq(domains.domain, domain),
      );
      return row?.key ?? null;
    },
    async remove(domain) {
      const rows = await db.delete(domains).where(eq(domains.domain, domain)).returning({ id: domains.id });
      return rows.length > 0;
    },
    async rotateKey(domain) {
      const [row] = await db.update(domains)
        .set({ clientApiKey: newClientApiKey(), updatedAt: new Date() })
        .where(eq(domains.domain, domain))
        .returning();
      return row ? { ...info(row), client_api_key: row.clientApiKey } : null;
    },
  };
}
