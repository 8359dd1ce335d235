/** drizzle tables. One PostgreSQL schema for both backends (embedded PGlite and PostgreSQL). */
import { pgTable, text, timestamp, uuid, varchar } from "drizzle-orm/pg-core";

export const domains = pgTable("domains", {
  id: uuid("id").primaryKey().defaultRandom(),
  domain: varchar("domain", { length: 253 }).notNull().unique(),
  /** 64 hex characters = 32 random bytes; also the DTLS PSK of the domain's clients. */
  clientApiKey: varchar("client_api_key", { length: 64 }).notNull().unique(),
  memo: text("memo").notNull().default(""),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

export type DomainRow = typeof domains.$inferSelect;
