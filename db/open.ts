/**
 * Opens the database: embedded PGlite in the data directory by default, PostgreSQL through
 * postgres.js when a DSN is given. Both get the same drizzle schema and the same migrations.
 */
import { PGlite } from "@electric-sql/pglite";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import * as schema from "./schema.ts";
import { migrations } from "./migrations.ts";
import type { Logger } from "../lib/log/logger.ts";
import { silentLogger } from "../lib/log/logger.ts";
import { DataDirInUseError, lockDataDir, restrictUmask, secureTree } from "./data_dir.ts";

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  db: Db;
  kind: "pglite" | "postgres";
  /** Where it lives, without credentials. */
  location: string;
  close(): Promise<void>;
}

export class DatabaseError extends Error {
  constructor(
    readonly code: "DB_UNREACHABLE" | "DB_MIGRATION_FAILED" | "DB_OPEN_FAILED" | "DB_DATA_DIR_IN_USE",
    message: string,
  ) {
    super(message);
    this.name = "DatabaseError";
  }
}

export interface OpenOptions {
  /** PostgreSQL URL; unset means PGlite in dataDir. */
  dsn?: string;
  dataDir: string;
  logger?: Logger;
  /** The whole connect-and-check must finish within this; default 10 s. */
  connectTimeoutMs?: number;
}

/** Opens the database and applies pending migrations. */
export async function openDatabase(options: OpenOptions): Promise<Database> {
  const logger = options.logger ?? silentLogger;
  const database = options.dsn
    ? await openPostgres(options.dsn, options.connectTimeoutMs ?? 10_000)
    : await openPglite(options.dataDir);
  try {
    const applied = await migrate(database.db);
    logger.info(
      { component: "db", backend: database.kind, location: database.location, applied },
      "database ready",
    );
  } catch (e) {
    await database.close().catch(() => {});
    if (e instanceof DatabaseError) throw e;
    throw new DatabaseError("DB_MIGRATION_FAILED", `applying migrations failed: ${(e as Error).message}`);
  }
  return database;
}

async function openPglite(dataDir: string): Promise<Database> {
  const root = dataDir.replace(/\/+$/, "") || "/";
  const dir = `${root}/pglite`;
  let lock;
  try {
    // PGlite creates its files 0666: owner-only before it starts, and existing files fixed.
    restrictUmask();
    await secureTree(root);
    lock = await lockDataDir(root);
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const client = await PGlite.create(dir);
    await secureTree(dir);
    const db = drizzlePglite(client, { schema }) as unknown as Db;
    const held = lock;
    return {
      db,
      kind: "pglite",
      location: dir,
      close: async () => {
        try {
          await client.close();
        } finally {
          held.release();
        }
      },
    };
  } catch (e) {
    lock?.release();
    if (e instanceof DataDirInUseError) throw new DatabaseError("DB_DATA_DIR_IN_USE", e.message);
    throw new DatabaseError(
      "DB_OPEN_FAILED",
      `cannot open the embedded database in ${dir}: ${
        (e as Error).message
      } (check HOP_DATA_DIR is writable and not used by another server)`,
    );
  }
}

function redactDsn(dsn: string): string {
  try {
    const u = new URL(dsn);
    if (u.password) u.password = "****";
    return u.toString();
  } catch {
    return "(unparsable DSN)";
  }
}

async function openPostgres(dsn: string, timeoutMs: number): Promise<Database> {
  const client = postgres(dsn, {
    max: 10,
    connect_timeout: Math.max(1, Math.floor(timeoutMs / 1000)),
    onnotice: () => {},
  });
  const location = redactDsn(dsn);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      client`select 1`,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (e) {
    await client.end({ timeout: 0 }).catch(() => {});
    throw new DatabaseError(
      "DB_UNREACHABLE",
      `cannot reach PostgreSQL at ${location}: ${
        (e as Error).message
      } (check HOP_DB_DSN and that the server is running)`,
    );
  } finally {
    clearTimeout(timer);
  }
  const db = drizzlePostgres(client, { schema }) as unknown as Db;
  return { db, kind: "postgres", location, close: () => client.end({ timeout: 5 }) };
}

/** Applies the embedded migrations not yet recorded, each in a transaction, under an advisory lock. */
export async function migrate(db: Db): Promise<string[]> {
  const applied: string[] = [];
  await db.transaction(async (tx) => {
    // One server migrates at a time when several share a PostgreSQL.
    await tx.execute(sql`select pg_advisory_xact_lock(7254011)`);
    await tx.execute(sql`create table if not exists hopgate_migrations (
      tag text primary key,
      applied_at timestamptz not null default now()
    )`);
    const rows = await tx.execute(sql`select tag from hopgate_migrations`);
    const done = new Set(resultRows(rows).map((r) => String(r.tag)));
    for (const m of migrations) {
      if (done.has(m.tag)) continue;
      for (const statement of m.statements) await tx.execute(sql.raw(statement));
      await tx.execute(sql`insert into hopgate_migrations (tag) values (${m.tag})`);
      applied.push(m.tag);
    }
  });
  return applied;
}

/** postgres.js returns an array of rows, PGlite an object with `rows`. */
function resultRows(result: unknown): Record<string, unknown>[] {
  if (Array.isArray(result)) return result as Record<string, unknown>[];
  return ((result as { rows?: Record<string, unknown>[] }).rows) ?? [];
}
