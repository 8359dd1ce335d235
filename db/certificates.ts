/** The certificates table (one per host name) and the leases that keep one order per host at a time. */
import { and, asc, eq, lt, or, sql } from "drizzle-orm";
import type { Db } from "./open.ts";
import { certificateLeases, type CertificateRow, certificates } from "./schema.ts";

export interface StoredCertificate {
  hostname: string;
  /** Leaf first, then the intermediates. */
  certPem: string;
  keyPem: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  issuedAt: Date;
}

export interface CertificateTable {
  get(hostname: string): Promise<StoredCertificate | null>;
  list(): Promise<StoredCertificate[]>;
  /** Inserts or replaces the host's certificate. */
  save(cert: Omit<StoredCertificate, "issuedAt">): Promise<void>;
  remove(hostname: string): Promise<boolean>;
  /** Takes the host's order lease for `ms` unless another holder has a live one. */
  tryLease(hostname: string, holder: string, ms: number): Promise<boolean>;
  releaseLease(hostname: string, holder: string): Promise<void>;
}

function stored(row: CertificateRow): StoredCertificate {
  return { ...row };
}

/** The certificates table over a drizzle database. */
export function createCertificateTable(db: Db): CertificateTable {
  return {
    async get(hostname) {
      const [row] = await db.select().from(certificates).where(eq(certificates.hostname, hostname));
      return row ? stored(row) : null;
    },
    async list() {
      return (await db.select().from(certificates).orderBy(asc(certificates.hostname))).map(stored);
    },
    async save(cert) {
      const values = { ...cert, issuedAt: new Date() };
      await db.insert(certificates).values(values).onConflictDoUpdate({
        target: certificates.hostname,
        set: values,
      });
    },
    async remove(hostname) {
      await db.delete(certificateLeases).where(eq(certificateLeases.hostname, hostname));
      const rows = await db.delete(certificates).where(eq(certificates.hostname, hostname)).returning({
        hostname: certificates.hostname,
      });
      return rows.length > 0;
    },
    async tryLease(hostname, holder, ms) {
      const expiresAt = new Date(Date.now() + ms);
      const rows = await db.insert(certificateLeases).values({ hostname, holder, expiresAt })
        .onConflictDoUpdate({
          target: certificateLeases.hostname,
          set: { holder, expiresAt },
          setWhere: or(
            lt(certificateLeases.expiresAt, sql`now()`),
            eq(certificateLeases.holder, holder),
          ),
        })
        .returning({ holder: certificateLeases.holder });
      return rows.length > 0 && rows[0].holder === holder;
    },
    async releaseLease(hostname, holder) {
      await db.delete(certificateLeases).where(
        and(eq(certificateLeases.hostname, hostname), eq(certificateLeases.holder, holder)),
      );
    },
  };
}
