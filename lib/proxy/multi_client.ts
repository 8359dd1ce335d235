/**
 * A client with one tunnel session to each server address: every A/AAAA record of each configured
 * host (or the explicit comma-separated list), at most `maxSessions`. Each session is one
 * `runTunnelClient` loop and reconnects on its own, so a request that lands on any of the servers
 * finds a session there, and a server that is down (or not up yet) joins when it answers.
 * Names are resolved again from time to time: a server added to the DNS name gets a session too.
 */
import type { Logger } from "../log/logger.ts";
import { KeyRejectedError, runTunnelClient, type TunnelClientOptions } from "./tunnel_client.ts";

export interface ServerAddress {
  hostname: string;
  port: number;
}

export interface MultiClientOptions extends Omit<TunnelClientOptions, "server"> {
  servers: ServerAddress[];
  /** At most this many sessions (HOP_CLIENT_MAX_SESSIONS, default 4). */
  maxSessions?: number;
  /** A host's addresses (default: its A and AAAA records). */
  resolve?(hostname: string): Promise<string[]>;
  /** How often names are resolved again (default 60 s). */
  resolveEveryMs?: number;
}

export const DEFAULT_MAX_SESSIONS = 4;
/** A server that rejected the key while others accept it is tried again after this long. */
const REJECTED_RETRY_MS = 2000;

const isIp = (h: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(h) || h.includes(":");

async function resolveDns(hostname: string): Promise<string[]> {
  const found = await Promise.allSettled([
    Deno.resolveDns(hostname, "A"),
    Deno.resolveDns(hostname, "AAAA"),
  ]);
  return found.flatMap((r) => r.status === "fulfilled" ? r.value : []);
}

/** The addresses to hold a session to, deduplicated, in order, capped at `max`. */
export async function expandServers(
  servers: ServerAddress[],
  max: number,
  resolve: (hostname: string) => Promise<string[]>,
  log?: Logger,
): Promise<ServerAddress[]> {
  const out: ServerAddress[] = [];
  const seen = new Set<string>();
  const push = (a: ServerAddress) => {
    const key = `${a.hostname}|${a.port}`;
    if (!seen.has(key) && out.length < max) {
      seen.add(key);
      out.push(a);
    }
  };
  for (const s of servers) {
    if (isIp(s.hostname)) {
      push(s);
      continue;
    }
    let ips: string[] = [];
    try {
      ips = await resolve(s.hostname);
    } catch (e) {
      log?.warn({ host: s.hostname, err: (e as Error).message }, "resolving the server name failed");
    }
    // Unresolvable now: dial the name itself (the tunnel loop retries and resolves again).
    if (ips.length === 0) push(s);
    for (const ip of ips) push({ hostname: ip, port: s.port });
  }
  return out;
}

const label = (a: ServerAddress) =>
  a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;

/**
 * Runs one tunnel loop per server address until the signal aborts (resolves) or a loop ends with
 * an error retrying cannot help (KeyRejectedError, CarrierTrustError), which stops the others.
 */
export async function runMultiTunnelClient(o: MultiClientOptions): Promise<void> {
  const log = o.logger.child({ component: "tunnel", domain: o.domain });
  const max = Math.max(1, o.maxSessions ?? DEFAULT_MAX_SESSIONS);
  const resolve = o.resolve ?? resolveDns;
  const stopAll = new AbortController();
  const onAbort = () => stopAll.abort();
  o.signal.addEventListener("abort", onAbort);
  const loops = new Map<string, Promise<void>>();
  /** The error that ended the client (a rejected key, an untrusted certificate): retrying cannot help. */
  let failure: Error | undefined;
  /** Sessions up right now, over all servers. */
  let up = 0;
  const onConnected: MultiClientOptions["onConnected"] = (url, id, connection, carrier) => {
    up++;
    const down = () => up--;
    connection.closed.then(down, down);
    o.onConnected?.(url, id, connection, carrier);
  };

  const first = await expandServers(o.servers, max, resolve, log);

  const startLoop = (server: ServerAddress) => {
    const key = label(server);
    if (loops.has(key)) return;
    const loop = runTunnelClient({
      ...o,
      server,
      logger: o.logger.child({ server: key }),
      signal: stopAll.signal,
      onConnected,
    })
      .catch(async (e) => {
        if (e instanceof KeyRejectedError) {
          // While another server accepts the key, this one may just not know the domain yet (a
          // registration a moment old): try it again later. With no session up, the key is wrong.
          if (up > 0 && !stopAll.signal.aborted) {
            log.warn(
              { server: key, err: e.message },
              "this server rejected the key; others accept it: retrying",
            );
            loops.delete(key);
            await new Promise((r) => setTimeout(r, REJECTED_RETRY_MS));
            if (!stopAll.signal.aborted) startLoop(server);
            return;
          }
        }
        // runTunnelClient ends only on errors that retrying cannot help with: stop every loop.
        failure ??= e as Error;
        stopAll.abort();
      });
    loops.set(key, loop);
  };

  const refresh = async (known?: ServerAddress[]) => {
    const targets = known ?? await expandServers(o.servers, max, resolve, log);
    const fresh = targets.filter((t) => !loops.has(label(t)));
    if (fresh.length > 0 || loops.size === 0) {
      log.info({ servers: targets.map(label), max_sessions: max }, "holding a session to each server");
    }
    for (const t of targets) if (loops.size < max) startLoop(t);
  };

  await refresh(first);
  const names = o.servers.some((s) => !isIp(s.hostname));
  const timer = names
    ? setInterval(() => void refresh().catch(() => {}), o.resolveEveryMs ?? 60_000)
    : undefined;
  try {
    // The loops end only when stopping (signal, or a rejected key).
    await new Promise<void>((r) => {
      if (stopAll.signal.aborted) r();
      else stopAll.signal.addEventListener("abort", () => r(), { once: true });
    });
    await Promise.all(loops.values());
  } finally {
    clearInterval(timer);
    o.signal.removeEventListener("abort", onAbort);
  }
  if (failure) throw failure;
}
