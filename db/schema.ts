/** drizzle tables. One PostgreSQL schema for both backends (embedded PGlite and PostgreSQL). */
import { jsonb, pgTable, text, timestamp, uuid, varchar } from "drizzle-orm/pg-core";

export const domains = pgTable("domains", {
  id: uuid("id").primaryKey().defaultRandom(),
  domain: varchar("domain", { length: 253 }).notNull().unique(),
  /** Legacy plain-text key: emptied at start-up once sealed (0003); never written any more. */
  clientApiKey: varchar("client_api_key", { length: 64 }).unique(),
  /** HMAC-SHA-256 (hex) of the key under the server secret: uniqueness and lookup without the key. */
  clientKeyHash: varchar("client_key_hash", { length: 64 }).unique(),
  /**
   * The key (64 hex characters = 32 random bytes, also the DTLS PSK of the domain's clients) sealed
   * with AES-256-GCM under the server secret; see db/key_seal.ts.
   */
  clientKeySealed: text("client_key_sealed"),
  memo: text("memo").notNull().default(""),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

export type DomainRow = typeof domains.$inferSelect;

/**
 * One certificate per host name (the server's domain and each registered domain), shared by every
 * server on the database. Not a foreign key to domains: the server's own domain is not a row there.
 */
export const certificates = pgTable("certificates", {
  hostname: varchar("hostname", { length: 253 }).primaryKey(),
  /** Leaf first, then the intermediates, PEM. */
  certPem: text("cert_pem").notNull(),
  keyPem: text("key_pem").notNull(),
  serial: varchar("serial", { length: 64 }).notNull(),
  notBefore: timestamp("not_before", { withTimezone: true }).notNull(),
  notAfter: timestamp("not_after", { withTimezone: true }).notNull(),
  issuedAt: timestamp("issued_at", { withTimezone: true }).notNull().defaultNow(),
});

export type CertificateRow = typeof certificates.$inferSelect;

/**
 * Who is ordering a host's certificate right now, so that servers sharing the database place one
 * order per host name at a time. A lease past `expires_at` is free again (its holder died).
 */
export const certificateLeases = pgTable("certificate_leases", {
  hostname: varchar("hostname", { length: 253 }).primaryKey(),
  holder: varchar("holder", { length: 64 }).notNull(),
  expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
});

/** The ACME account per directory (CA): its key is created once and kept. */
export const acmeAccounts = pgTable("acme_accounts", {
  directoryUrl: text("directory_url").primaryKey(),
  keyPem: text("key_pem").notNull(),
  accountUrl: text("account_url"),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

/**
 * Pending HTTP-01 challenges, so that whichever server the CA's validator reaches (several behind one
 * address) can answer for an order another server placed.
 */
export const acmeChallenges = pgTable("acme_challenges", {
  token: varchar("token", { length: 255 }).primaryKey(),
  keyAuthorization: text("key_authorization").notNull(),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

/**
 * A domain's access rules at the edge (basic auth, IP lists, rate limit, header rules), as the admin
 * API stores them: passwords only as bcrypt hashes. Removed with its domain.
 */
export const domainPolicies = pgTable("domain_policies", {
  domain: varchar("domain", { length: 253 }).primaryKey().references(() => domains.domain, {
    onDelete: "cascade",
  }),
  policy: jsonb("policy").notNull(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});
