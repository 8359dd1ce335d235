/**
 * The servers sharing this database (a heartbeat row each) and the tunnel sessions each one holds.
 * A server is live while its heartbeat is younger than the liveness window; a dead server's row
 * (and, by cascade, its sessions) is removed by whichever server notices first.
 */
import { and, asc, eq, gt, inArray, lt, ne, sql } from "drizzle-orm";
import type { Db } from "./open.ts";
import { type ServerRow, servers, sessions } from "./schema.ts";

/** A server as GET /servers shows it. */
export interface ServerInfo {
  id: string;
  addresses: Record<string, string>;
  version: string;
  started_at: string;
  last_heartbeat: string;
}

/** A session row: which server holds which domain's session. */
export interface SessionRecord {
  id: string;
  server_id: string;
  domain: string;
  carrier: string;
  remote_address: string;
  connected_since: string;
}

export interface ServerDirectory {
  /** Refreshes this server's heartbeat; true when its row had to be (re)created. */
  heartbeat(addresses: Record<string, string>, version: string, startedAt: Date): Promise<boolean>;
  /** Servers whose heartbeat is younger than `withinMs`, oldest first. */
  live(withinMs: number): Promise<ServerInfo[]>;
  /** Deletes servers silent for longer than `silentMs` (their sessions go with them); returns how many. */
  reap(silentMs: number): Promise<number>;
  /** Adds this server's new sessions and deletes the ended ones (by id). */
  updateSessions(added: Omit<SessionRecord, "server_id">[], endedIds: string[]): Promise<void>;
  /** Replaces all of this server's session rows. */
  replaceAllSessions(rows: Omit<SessionRecord, "server_id">[]): Promise<void>;
  /** Sessions of a domain held by other live servers. */
  othersSessions(domain: string, withinMs: number): Promise<SessionRecord[]>;
  /** Removes this server's row and sessions (clean shutdown). */
  leave(): Promise<void>;
}

function info(row: ServerRow): ServerInfo {
  return {
    id: row.id,
    addresses: row.addresses,
    version: row.version,
    started_at: row.startedAt.toISOString(),
    last_heartbeat: row.lastHeartbeat.toISOString(),
  };
}

/** Rows per INSERT: 6 parameters each, well under PostgreSQL's 65 535. */
const CHUNK = 1000;

const ago = (ms: number) => sql`now() - make_interval(secs => ${ms / 1000})`;

/** The directory as seen by server `serverId`. */
export function createServerDirectory(db: Db, serverId: string): ServerDirectory {
  const toRows = (rows: Omit<SessionRecord, "server_id">[]) =>
    rows.map((r) => ({
      id: r.id,
      serverId,
      domain: r.domain,
      carrier: r.carrier,
      remoteAddress: r.remote_address.slice(0, 128),
      connectedAt: new Date(r.connected_since),
    }));
  const insertAll = async (tx: Pick<Db, "insert">, rows: Omit<SessionRecord, "server_id">[]) => {
    const all = toRows(rows);
    for (let i = 0; i < all.length; i += CHUNK) {
      await tx.insert(sessions).values(all.slice(i, i + CHUNK)).onConflictDoNothing();
    }
  };
  return {
    async heartbeat(addresses, version, startedAt) {
      const updated = await db.update(servers)
        .set({ lastHeartbeat: sql`now()`, addresses })
        .where(eq(servers.id, serverId))
        .returning({ id: servers.id });
      if (updated.length > 0) return false;
      await db.insert(servers).values({ id: serverId, addresses, version, startedAt })
        .onConflictDoUpdate({ target: servers.id, set: { lastHeartbeat: sql`now()`, addresses } });
      return true;
    },
    async live(withinMs) {
      const rows = await db.select().from(servers).where(gt(servers.lastHeartbeat, ago(withinMs)))
        .orderBy(asc(servers.startedAt));
      return rows.map(info);
    },
    async reap(silentMs) {
      const rows = await db.delete(servers).where(lt(servers.lastHeartbeat, ago(silentMs)))
        .returning({ id: servers.id });
      return rows.length;
    },
    async updateSessions(added, endedIds) {
      if (added.length === 0 && endedIds.length === 0) return;
      await db.transaction(async (tx) => {
        for (let i = 0; i < endedIds.length; i += CHUNK) {
          await tx.delete(sessions).where(
            and(eq(sessions.serverId, serverId), inArray(sessions.id, endedIds.slice(i, i + CHUNK))),
          );
        }
        await insertAll(tx, added);
      });
    },
    async replaceAllSessions(rows) {
      await db.transaction(async (tx) => {
        await tx.delete(sessions).where(eq(sessions.serverId, serverId));
        await insertAll(tx, rows);
      });
    },
    async othersSessions(domain, withinMs) {
      const rows = await db.select({ s: sessions }).from(sessions)
        .innerJoin(servers, eq(sessions.serverId, servers.id))
        .where(and(
          eq(sessions.domain, domain),
          ne(sessions.serverId, serverId),
          gt(servers.lastHeartbeat, ago(withinMs)),
        ))
        .orderBy(asc(sessions.connectedAt));
      return rows.map(({ s }) => ({
        id: s.id,
        server_id: s.serverId,
        domain: s.domain,
        carrier: s.carrier,
        remote_address: s.remoteAddress,
        connected_since: s.connectedAt.toISOString(),
      }));
    },
    async leave() {
      await db.delete(servers).where(eq(servers.id, serverId));
    },
  };
}
