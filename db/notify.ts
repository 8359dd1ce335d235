/**
 * Change notification between servers sharing one database, through PostgreSQL LISTEN/NOTIFY on
 * one channel. A payload names the kind of change, the domain and the server that made it (so a
 * server skips its own). A dropped listening connection is reopened with back-off; each time it is
 * (re)established `onListening` runs, so that the caller resynchronises whatever it missed.
 * PGlite delivers notifications in-process (one server: nothing to miss, no reconnect).
 */
import postgres from "postgres";
import { sql } from "drizzle-orm";
import type { PGlite } from "@electric-sql/pglite";
import type { Db } from "./open.ts";
import type { Logger } from "../lib/log/logger.ts";

export const CHANGE_CHANNEL = "hopgate_changes";

export const CHANGE_KINDS = [
  "domain_added",
  "domain_removed",
  "key_rotated",
  "certificate_renewed",
  "policy_changed",
] as const;
export type ChangeKind = typeof CHANGE_KINDS[number];

export interface Change {
  kind: ChangeKind;
  domain: string;
  /** Id of the server that made the change. */
  server: string;
}

/** PostgreSQL caps a NOTIFY payload at 8000 bytes; ours stay far below. */
const MAX_PAYLOAD = 1000;

/** The payload for a change (JSON). */
export function encodeChange(change: Change): string {
  return JSON.stringify({ k: change.kind, d: change.domain, s: change.server });
}

/** A change from a payload, or null when it is not one of ours (ignored, never thrown). */
export function decodeChange(payload: string): Change | null {
  if (payload.length > MAX_PAYLOAD) return null;
  let v: unknown;
  try {
    v = JSON.parse(payload);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null) return null;
  const { k, d, s } = v as Record<string, unknown>;
  if (!CHANGE_KINDS.includes(k as ChangeKind) || typeof d !== "string" || typeof s !== "string") return null;
  if (d.length === 0 || d.length > 253 || s.length > 64) return null;
  return { kind: k as ChangeKind, domain: d, server: s };
}

/** Where notifications come from: the PostgreSQL DSN, or the in-process PGlite. */
export type ChangeSource = { dsn: string } | { pglite: PGlite };

export interface ChangeFeedOptions {
  source: ChangeSource;
  db: Db;
  serverId: string;
  logger: Logger;
  /** A change another server made. */
  onChange(change: Change): void | Promise<void>;
  /**
   * The channel is listened to (first time, and after each reconnect). With PostgreSQL, a throw
   * drops the connection and the whole thing is retried after the back-off.
   */
  onListening?(): void | Promise<void>;
  /** Back-off bounds for reconnecting (defaults 250 ms and 2 s). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** How often the listening connection is checked (default 2 s). */
  healthCheckMs?: number;
}

export interface ChangeFeed {
  /** Tells every server (this one skips it) about a change made here. */
  publish(kind: ChangeKind, domain: string): Promise<void>;
  /** True while the channel is listened to. */
  listening(): boolean;
  close(): Promise<void>;
}

/** Starts listening; returns at once (the first LISTEN happens in the background). */
export function openChangeFeed(o: ChangeFeedOptions): ChangeFeed {
  const log = o.logger.child({ component: "notify" });
  let closed = false;
  let up = false;
  const deliver = async (payload: string) => {
    const change = decodeChange(payload);
    if (!change || change.server === o.serverId) return;
    try {
      await o.onChange(change);
    } catch (e) {
      log.warn(
        { kind: change.kind, domain: change.domain, err: (e as Error).message },
        "applying a change failed",
      );
    }
  };
  const listened = async () => {
    try {
      await o.onListening?.();
    } catch (e) {
      log.warn({ err: (e as Error).message }, "resynchronising after LISTEN failed");
    }
  };
  let stop: () => Promise<void>;
  if ("pglite" in o.source) {
    const client = o.source.pglite;
    const unsubscribe = client.listen(CHANGE_CHANNEL, (payload) => void deliver(payload)).then((u) => {
      up = true;
      void listened();
      return u;
    });
    stop = async () => {
      const u = await unsubscribe.catch(() => undefined);
      await u?.().catch(() => {});
    };
  } else {
    // A failed resynchronisation counts as a failed connection: it is retried with the back-off.
    const resync = async () => await o.onListening?.();
    stop = listenWithReconnect(o.source.dsn, o, deliver, resync, (v) => up = v, () => closed, log);
  }
  return {
    async publish(kind, domain) {
      const payload = encodeChange({ kind, domain, server: o.serverId });
      await o.db.execute(sql`select pg_notify(${CHANGE_CHANNEL}, ${payload})`);
    },
    listening: () => up && !closed,
    async close() {
      closed = true;
      up = false;
      await stop();
    },
  };
}

function sleep(ms: number, cancelled: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const start = Date.now();
    const tick = () => {
      if (cancelled() || Date.now() - start >= ms) resolve();
      else setTimeout(tick, Math.min(100, ms));
    };
    tick();
  });
}

/**
 * One dedicated connection that LISTENs. postgres.js re-listens once after a drop but gives up if
 * the database is still down then, so the loop is ours: a connection that closes, or fails a
 * periodic `select 1`, is ended and reopened with exponential back-off.
 */
function listenWithReconnect(
  dsn: string,
  o: ChangeFeedOptions,
  deliver: (payload: string) => Promise<void>,
  listened: () => Promise<void>,
  setUp: (up: boolean) => void,
  isClosed: () => boolean,
  log: Logger,
): () => Promise<void> {
  const initial = o.backoffInitialMs ?? 250;
  const max = o.backoffMaxMs ?? 2_000;
  const checkMs = o.healthCheckMs ?? 2000;
  let current: postgres.Sql | undefined;
  const loop = (async () => {
    let backoff = initial;
    let failures = 0;
    while (!isClosed()) {
      let dropped = false;
      const client = postgres(dsn, {
        max: 1,
        idle_timeout: 0,
        max_lifetime: null,
        connect_timeout: 5,
        fetch_types: false,
        onnotice: () => {},
        onnotify: (channel: string, payload: string) => {
          if (channel === CHANGE_CHANNEL) void deliver(payload);
        },
        onclose: () => {
          dropped = true;
        },
      } as postgres.Options<Record<string, postgres.PostgresType>>);
      current = client;
      try {
        await client.unsafe(`listen ${CHANGE_CHANNEL}`);
        // Listening first, then reading the domain list: nothing falls between the two.
        await listened();
        setUp(true);
        if (failures > 0) log.info({ after_failures: failures }, "listening for changes again");
        failures = 0;
        backoff = initial;
        while (!isClosed() && !dropped) {
          await sleep(checkMs, () => isClosed() || dropped);
          if (isClosed() || dropped) break;
          await withTimeout(client`select 1`, checkMs, "health check");
        }
      } catch (e) {
        if (!isClosed()) {
          failures++;
          // One warning per outage, not one per attempt.
          if (failures === 1) log.warn({ err: (e as Error).message }, "change notification connection lost");
        }
      }
      setUp(false);
      await client.end({ timeout: 0 }).catch(() => {});
      if (isClosed()) break;
      if (dropped && failures === 0) {
        failures = 1;
        log.warn({}, "change notification connection closed");
      }
      await sleep(Math.round(backoff * (0.5 + Math.random() * 0.5)), isClosed);
      backoff = Math.min(max, backoff * 2);
    }
  })();
  return async () => {
    await current?.end({ timeout: 0 }).catch(() => {});
    await loop;
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
