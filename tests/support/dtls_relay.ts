/**
 * A UDP relay for DTLS tests: sits between one client and a server and drops datagrams on a
 * seeded random schedule (and, optionally, the first N from the client), so loss tests are
 * repeatable. The server sees the relay's address as the client's.
 */
import { seededRandom } from "../../lib/testing/seeded_random.ts";

export interface RelayOptions {
  target: { hostname: string; port: number };
  /** Probability of dropping each datagram, per direction. */
  lossToServer?: number;
  lossToClient?: number;
  /** Drops this many client→server datagrams first, whatever the random draw. */
  dropFirstToServer?: number;
  seed?: number;
}

export interface Relay {
  readonly port: number;
  /** Every client→server datagram forwarded so far, in order (copies). */
  readonly captured: Uint8Array[];
  /** Sends a datagram to the server from the relay's address, as if the client had sent it. */
  inject(datagram: Uint8Array): Promise<void>;
  /** Drops the next n server→client datagrams (a burst loss). */
  dropNextToClient(n: number): void;
  readonly stats: { toServer: number; toClient: number; dropped: number };
  close(): Promise<void>;
}

/** The transport's seeded PRNG, re-exported for the DTLS tests. */
export { seededRandom };

export function startRelay(o: RelayOptions): Relay {
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const rndToServer = seededRandom(o.seed ?? 1);
  const rndToClient = seededRandom((o.seed ?? 1) * 7919 + 1);
  const stats = { toServer: 0, toClient: 0, dropped: 0 };
  const captured: Uint8Array[] = [];
  const target: Deno.NetAddr = { transport: "udp", hostname: o.target.hostname, port: o.target.port };
  let client: Deno.NetAddr | undefined;
  let firstDrops = o.dropFirstToServer ?? 0;
  let burstToClient = 0;
  let closed = false;
  const pending = new Set<Promise<unknown>>();
  const forward = (data: Uint8Array, to: Deno.NetAddr) => {
    const p = conn.send(data, to).catch(() => {});
    pending.add(p);
    p.finally(() => pending.delete(p));
  };
  const loop = (async () => {
    while (!closed) {
      let data: Uint8Array;
      let from: Deno.NetAddr;
      try {
        const [d, a] = await conn.receive();
        data = d;
        from = a as Deno.NetAddr;
      } catch {
        return;
      }
      const fromServer = from.port === o.target.port && from.hostname === o.target.hostname;
      if (fromServer) {
        if (client === undefined) continue;
        if (burstToClient > 0) {
          burstToClient--;
          stats.dropped++;
          continue;
        }
        if (rndToClient() < (o.lossToClient ?? 0)) {
          stats.dropped++;
          continue;
        }
        stats.toClient++;
        forward(data, client);
      } else {
        client = from;
        if (firstDrops > 0) {
          firstDrops--;
          stats.dropped++;
          continue;
        }
        if (rndToServer() < (o.lossToServer ?? 0)) {
          stats.dropped++;
          continue;
        }
        stats.toServer++;
        captured.push(data.slice());
        forward(data, target);
      }
    }
  })();
  return {
    port: (conn.addr as Deno.NetAddr).port,
    stats,
    captured,
    dropNextToClient(n: number) {
      burstToClient = n;
    },
    async inject(datagram: Uint8Array) {
      await conn.send(datagram, target);
    },
    async close() {
      closed = true;
      await Promise.allSettled([...pending]);
      conn.close();
      await loop;
    },
  };
}
