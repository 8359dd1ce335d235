/**
 * Composition step: the cluster. Several servers on one PostgreSQL announce themselves and their
 * sessions (presence), and forward a request for a domain whose session another one holds.
 */
import type { ServerConfig } from "../config/server_config.ts";
import { VERSION } from "../config/version.ts";
import type { Logger } from "../log/logger.ts";
import type { Database } from "../../db/open.ts";
import { createServerDirectory } from "../../db/servers.ts";
import type { SessionRegistry } from "../proxy/registry.ts";
import { type ClusterPresence, soloPresence, startClusterPresence } from "../proxy/cluster_presence.ts";
import { peerAuth, type PeerForwarding } from "../proxy/peer_forward.ts";
import type { DtlsServer } from "../dtls/server.ts";
import type { Fronts } from "./fronts.ts";

/** The cluster presence, started after the fronts (it announces their addresses); read late. */
export interface ClusterSlot {
  presence?: ClusterPresence;
}

/** Finds a live server holding a session for a domain (answers cached for a second). */
function peerFinder(presence: () => ClusterPresence | undefined): PeerForwarding["findPeer"] {
  const cache = new Map<string, { at: number; url: URL | undefined }>();
  return async (domain) => {
    const hit = cache.get(domain);
    if (hit && Date.now() - hit.at < 1000) return hit.url;
    let url: URL | undefined;
    const p = presence();
    const held = p ? await p.othersSessions(domain).catch(() => []) : [];
    if (held.length > 0) {
      const live = new Map((await p!.live().catch(() => [])).map((s) => [s.id, s]));
      for (const s of held) {
        const address = live.get(s.server_id)?.addresses.peer;
        if (address) {
          url = new URL(`http://${address}`);
          break;
        }
      }
    }
    if (cache.size > 10_000) cache.clear();
    cache.set(domain, { at: Date.now(), url });
    return url;
  };
}

/** Forwarding to other servers: only with a shared PostgreSQL (HOP_DB_DSN); undefined otherwise. */
export function peerForwarding(
  config: ServerConfig,
  secret: Uint8Array,
  serverId: string,
  cluster: ClusterSlot,
): PeerForwarding | undefined {
  return config.dbDsn
    ? { auth: peerAuth(secret, serverId), findPeer: peerFinder(() => cluster.presence) }
    : undefined;
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "[::]";
}

export interface PresenceOptions {
  database: Database;
  serverId: string;
  registry: SessionRegistry;
  fronts: Fronts;
  dtls: DtlsServer;
  logger: Logger;
}

/**
 * Announces this server, its addresses and sessions in the servers table (heartbeats). On the embedded
 * database there is nobody to announce to (its data directory is locked to one server): the server is its
 * own cluster, without a heartbeat query every 3 s and a row per session in a database only it reads
 * (idle CPU 0.17 → 0.11 s per 30 s).
 */
export function startPresence(o: PresenceOptions): ClusterPresence {
  const { http, https } = o.fronts;
  const { dtls } = o;
  const addresses = () => ({
    http: `${http.addr.hostname}:${http.addr.port}`,
    // Where other servers forward to: the plain listener, reachable at this machine's name when it
    // listens on every interface.
    peer: `${isWildcard(http.addr.hostname) ? Deno.hostname() : http.addr.hostname}:${http.addr.port}`,
    ...(https ? { https: `${https.addr.hostname}:${https.addr.port}` } : {}),
    dtls: `${dtls.addr.hostname}:${dtls.addr.port}`,
  });
  if (o.database.kind === "pglite") return soloPresence(o.serverId, VERSION, addresses);
  return startClusterPresence({
    directory: createServerDirectory(o.database.db, o.serverId),
    serverId: o.serverId,
    registry: o.registry,
    version: VERSION,
    logger: o.logger,
    addresses,
  });
}
