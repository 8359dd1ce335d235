/**
 * The accept loop every front uses: native Deno.listen, a loop that never dies (an accept error
 * such as EMFILE backs off and retries, with a rate-limited warning), and a cap on open
 * connections per source address (issue 11 item 1).
 */
import type { Logger } from "../log/logger.ts";
import { unmapAddress } from "./carrier.ts";
import type { FrontLimits } from "./front_limits.ts";

export interface AcceptedConn {
  conn: Deno.Conn;
  remoteAddr: string;
  remotePort: number;
  /** Call once when the connection is gone (frees its slot in the per-address count). */
  release(): void;
}

export interface AcceptLoop {
  addr: { hostname: string; port: number };
  /** Stops accepting; resolves when the loop has exited. */
  close(): Promise<void>;
  /** Open connections per address (for tests and metrics). */
  openFrom(address: string): number;
}

/** Logs at most one line per interval for a recurring condition, with the count it swallowed. */
export function rateLimitedWarn(logger: Logger | undefined, msg: string, intervalMs = 10_000) {
  let last = -Infinity;
  let suppressed = 0;
  return (fields: Record<string, unknown>) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      suppressed++;
      return;
    }
    last = now;
    logger?.warn({ ...fields, suppressed }, msg);
    suppressed = 0;
  };
}

/** Listens on addr and hands each accepted connection to onConn. */
export function startAcceptLoop(
  listen: { hostname: string; port: number },
  limits: FrontLimits,
  logger: Logger | undefined,
  onConn: (c: AcceptedConn) => void,
): AcceptLoop {
  const listener = Deno.listen({ hostname: listen.hostname, port: listen.port });
  const counts = new Map<string, number>();
  const warnAccept = rateLimitedWarn(logger, "accept failed; retrying after a back-off");
  const warnShed = rateLimitedWarn(
    logger,
    "per-address connection cap reached; closing new connections from this address",
  );
  let closed = false;
  const loop = (async () => {
    while (!closed) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (closed) return;
        // EMFILE/ENFILE and friends: the listener is fine, the process is out of something. Wait.
        warnAccept({ err: (e as Error).message, backoff_ms: limits.acceptBackoffMs });
        await new Promise((r) => setTimeout(r, limits.acceptBackoffMs));
        continue;
      }
      const na = conn.remoteAddr as Deno.NetAddr;
      const remoteAddr = unmapAddress(na.hostname);
      const open = counts.get(remoteAddr) ?? 0;
      if (open >= limits.maxConnectionsPerAddress) {
        warnShed({ remote: remoteAddr, cap: limits.maxConnectionsPerAddress });
        try {
          conn.close();
        } catch { /* already gone */ }
        continue;
      }
      counts.set(remoteAddr, open + 1);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        const n = (counts.get(remoteAddr) ?? 1) - 1;
        if (n <= 0) counts.delete(remoteAddr);
        else counts.set(remoteAddr, n);
      };
      try {
        (conn as Deno.TcpConn).setNoDelay(true);
      } catch { /* not TCP */ }
      try {
        onConn({ conn, remoteAddr, remotePort: na.port, release });
      } catch (e) {
        logger?.error({ err: String(e) }, "connection setup failed");
        release();
        try {
          conn.close();
        } catch { /* already gone */ }
      }
    }
  })();
  const bound = listener.addr as Deno.NetAddr;
  return {
    addr: { hostname: bound.hostname, port: bound.port },
    async close() {
      closed = true;
      try {
        listener.close();
      } catch { /* already closed */ }
      await loop;
    },
    openFrom: (a) => counts.get(a) ?? 0,
  };
}
