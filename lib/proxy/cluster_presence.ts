/**
 * This server's presence among the servers sharing the database: a heartbeat every few seconds,
 * removal of servers silent for long, and its tunnel sessions mirrored into the sessions table so
 * that any server's admin API lists a domain's sessions on every server.
 *
 * Sessions are written per domain, coalesced: a change marks the domain, a flush shortly after
 * replaces that domain's rows (idempotent, so a failed flush is simply redone in full once the
 * database answers again).
 */
import type { ServerDirectory, ServerInfo, SessionRecord } from "../../db/servers.ts";
import type { Logger } from "../log/logger.ts";
import type { SessionRegistry, TunnelSession } from "./registry.ts";

/** Heartbeat period. */
export const HEARTBEAT_MS = 3000;
/** A server whose heartbeat is older than this is not live. */
export const LIVE_WITHIN_MS = 4 * HEARTBEAT_MS;
/** A server silent this long is deleted, with its session rows. */
export const REAP_AFTER_MS = 60_000;
/** Session changes are written at most this often. */
const FLUSH_MS = 200;

export interface PresenceOptions {
  directory: ServerDirectory;
  serverId: string;
  registry: Pick<SessionRegistry, "list" | "onChange">;
  addresses: () => Record<string, string>;
  version: string;
  logger: Logger;
  heartbeatMs?: number;
}

export interface ClusterPresence {
  /** Live servers (this one included). */
  live(): Promise<ServerInfo[]>;
  /** A domain's sessions held by the other live servers. */
  othersSessions(domain: string): Promise<SessionRecord[]>;
  /** Stops the heartbeat and removes this server's row (best effort). */
  close(): Promise<void>;
}

const carrierOf = (s: TunnelSession): "udp" | "tcp" => s.carrier ?? "udp";
const asCarrier = (c: string): "udp" | "tcp" => c === "tcp" ? "tcp" : "udp";

function record(s: TunnelSession): Omit<SessionRecord, "server_id"> {
  return {
    id: s.id,
    domain: s.domain,
    carrier: carrierOf(s),
    remote_address: s.remoteAddress,
    connected_since: s.connectedAt.toISOString(),
  };
}

/** Starts the heartbeat and the session mirror. */
export function startClusterPresence(o: PresenceOptions): ClusterPresence {
  const log = o.logger.child({ component: "cluster" });
  const startedAt = new Date();
  const every = o.heartbeatMs ?? HEARTBEAT_MS;
  const dirty = new Set<string>();
  let needFull = true;
  let closed = false;
  let failing = false;
  /** Session rows reference the server row: none is written before the first heartbeat. */
  let registered = false;
  let flushing: Promise<void> | undefined;
  let flushTimer: ReturnType<typeof setTimeout> | undefined;

  /** Session ids written to the table, by domain. */
  const recorded = new Map<string, Set<string>>();
  const flush = async () => {
    flushTimer = undefined;
    if (closed || !registered) return;
    try {
      if (needFull) {
        dirty.clear();
        needFull = false;
        const all = o.registry.list();
        recorded.clear();
        for (const s of all) {
          const d = s.domain.toLowerCase().replace(/\.$/, "");
          recorded.set(d, (recorded.get(d) ?? new Set()).add(s.id));
        }
        await o.directory.replaceAllSessions(all.map(record));
      } else if (dirty.size > 0) {
        // Only the difference is written: at 10 000 sessions a start-up is 10 000 inserts, not N².
        const added: TunnelSession[] = [];
        const ended: string[] = [];
        for (const domain of dirty) {
          const had = recorded.get(domain) ?? new Set<string>();
          const now = o.registry.list(domain);
          const ids = new Set(now.map((s) => s.id));
          for (const s of now) if (!had.has(s.id)) added.push(s);
          for (const id of had) if (!ids.has(id)) ended.push(id);
          if (ids.size > 0) recorded.set(domain, ids);
          else recorded.delete(domain);
        }
        dirty.clear();
        await o.directory.updateSessions(added.map(record), ended);
      }
    } catch (e) {
      needFull = true;
      if (!failing) {
        log.warn({ err: (e as Error).message }, "recording sessions failed; retrying with the heartbeat");
      }
      failing = true;
    }
  };
  const schedule = () => {
    if (closed || flushTimer !== undefined) return;
    flushTimer = setTimeout(() => {
      flushing = (flushing ?? Promise.resolve()).then(flush);
    }, FLUSH_MS);
  };
  const unsubscribe = o.registry.onChange((domain) => {
    dirty.add(domain);
    schedule();
  });

  const beat = async () => {
    try {
      const created = await o.directory.heartbeat(o.addresses(), o.version, startedAt);
      // A recreated row lost its sessions (cascade): write them all again.
      if (created) needFull = true;
      registered = true;
      if (failing) log.info({}, "heartbeat restored");
      failing = false;
      await o.directory.reap(REAP_AFTER_MS);
      if (needFull) schedule();
    } catch (e) {
      if (!failing) log.warn({ err: (e as Error).message }, "heartbeat failed");
      failing = true;
    }
  };
  let beating = beat();
  const timer = setInterval(() => {
    beating = beating.then(beat);
  }, every);

  return {
    live: () => o.directory.live(LIVE_WITHIN_MS),
    othersSessions: (domain) => o.directory.othersSessions(domain, LIVE_WITHIN_MS),
    async close() {
      closed = true;
      clearInterval(timer);
      clearTimeout(flushTimer);
      unsubscribe();
      await beating.catch(() => {});
      await flushing?.catch(() => {});
      await o.directory.leave().catch(() => {});
    },
  };
}

/** A server that is its own cluster: live is itself, and no other server holds sessions. */
export function soloPresence(
  serverId: string,
  version: string,
  addresses: () => Record<string, string>,
): ClusterPresence {
  const startedAt = new Date().toISOString();
  return {
    live: () =>
      Promise.resolve([{
        id: serverId,
        addresses: addresses(),
        version,
        started_at: startedAt,
        last_heartbeat: new Date().toISOString(),
      }]),
    othersSessions: () => Promise.resolve([]),
    close: () => Promise.resolve(),
  };
}

/** The admin API's view of the cluster: a domain's sessions on every server, and the live servers. */
export function clusterAdminHooks(o: {
  registry: Pick<SessionRegistry, "list">;
  serverId: string;
  presence: () => ClusterPresence | undefined;
  logger: Logger;
}) {
  const log = o.logger.child({ component: "cluster" });
  return {
    async sessions(domain: string) {
      const here = o.registry.list(domain).map((s) => ({
        id: s.id,
        remote_address: s.remoteAddress,
        connected_since: s.connectedAt.toISOString(),
        requests_served: s.requestsServed,
        server_id: o.serverId,
        carrier: carrierOf(s),
      }));
      let elsewhere: SessionRecord[] = [];
      try {
        elsewhere = (await o.presence()?.othersSessions(domain)) ?? [];
      } catch (e) {
        // The database is unreachable: this server's own sessions are still worth showing.
        log.warn({ domain, err: (e as Error).message }, "listing other servers' sessions failed");
      }
      return [
        ...here,
        ...elsewhere.map((r) => ({
          id: r.id,
          remote_address: r.remote_address,
          connected_since: r.connected_since,
          requests_served: 0,
          server_id: r.server_id,
          carrier: asCarrier(r.carrier),
        })),
      ];
    },
    async servers() {
      const live = (await o.presence()?.live()) ?? [];
      return live.map((s) => ({ ...s, self: s.id === o.serverId }));
    },
  };
}
