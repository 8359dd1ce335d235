/**
 * Datagrams per small request/response exchange over a memory link in simulated time, by kind, as in
 * scripts/bench_transport.ts: a 9-byte header and 300 bytes then FIN one way, 9 + 200 bytes then FIN back.
 * Simulated time moves only once the event loop has settled.
 *
 *   deno run -A tests/support/transport_exchange_count.ts [exchanges] [concurrency] [one-way delay ms]
 *     [service ms: how long the far end takes to answer]
 */
import { decodePacket } from "../../lib/transport/packet.ts";
import type { TransportStream } from "../../lib/transport/types.ts";
import { connectedPair, drive } from "./transport_sim.ts";

export interface ExchangeCount {
  /** Datagrams both ways, per exchange. */
  perExchange: number;
  /** Datagrams per exchange by direction and frame types. */
  kinds: Map<string, number>;
  bytesPerExchange: number;
  simMs: number;
}

/** Runs `exchanges` request/response exchanges, `concurrency` at a time, after a warm-up. */
export async function countExchangeDatagrams(
  exchanges: number,
  concurrency: number,
  delayMs: number,
  serviceMs = 0,
): Promise<ExchangeCount> {
  const { clock, link, client, server } = connectedPair({ delayMs });
  const settle = <T>(work: Promise<T>) => drive(clock, work, 600_000, 8);
  const pause = (ms: number) =>
    settle(new Promise((resolve) => clock.setTimeout(() => resolve(undefined), ms)));
  const kinds = new Map<string, number>();
  let bytes = 0;
  for (const [name, session] of [["c→s", link.a], ["s→c", link.b]] as const) {
    const send = session.send.bind(session);
    session.send = (d: Uint8Array) => {
      const types = decodePacket(d).frames.map((f) =>
        f.type === "stream" ? (f.fin ? "stream+fin" : "stream") : f.type
      );
      const key = `${name} ${[...new Set(types)].join(",")}`;
      kinds.set(key, (kinds.get(key) ?? 0) + 1);
      bytes += d.length;
      send(d);
    };
  }
  server.onStream(async (s: TransportStream) => {
    for await (const _ of s.readable) { /* the request */ }
    // The local service's time to answer (a fetch in the product).
    if (serviceMs > 0) await new Promise((resolve) => clock.setTimeout(() => resolve(undefined), serviceMs));
    const w = s.writable.getWriter();
    await w.write(new Uint8Array(9));
    await w.write(new Uint8Array(200));
    await w.close();
  });
  const exchange = async () => {
    const s = await client.openStream();
    const w = s.writable.getWriter();
    await w.write(new Uint8Array(9));
    await w.write(new Uint8Array(300));
    await w.close();
    let n = 0;
    for await (const c of s.readable) n += c.length;
    if (n !== 209) throw new Error(`short response: ${n}`);
  };
  // Warm up (MAX_STREAMS, windows, packet size), then count.
  await settle(Promise.all(Array.from({ length: 64 }, exchange)));
  await pause(100);
  kinds.clear();
  bytes = 0;
  const t0 = clock.now();
  let next = 0;
  await settle(Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < exchanges) {
      next++;
      await exchange();
    }
  })));
  const simMs = clock.now() - t0;
  await pause(100);
  const perKind = new Map<string, number>();
  let total = 0;
  for (const [k, n] of kinds) {
    total += n;
    perKind.set(k, n / exchanges);
  }
  const bytesPerExchange = bytes / exchanges;
  client.abort();
  return { perExchange: total / exchanges, kinds: perKind, bytesPerExchange, simMs };
}

if (import.meta.main) {
  const exchanges = Number(Deno.args[0] ?? 1000);
  const concurrency = Number(Deno.args[1] ?? 1);
  const delayMs = Number(Deno.args[2] ?? 0.05);
  const serviceMs = Number(Deno.args[3] ?? 0);
  const r = await countExchangeDatagrams(exchanges, concurrency, delayMs, serviceMs);
  console.log(
    `${exchanges} exchanges, ${concurrency} at a time, one-way delay ${delayMs} ms, service ${serviceMs} ms: ` +
      `${r.perExchange.toFixed(2)} datagrams per exchange, ${r.bytesPerExchange.toFixed(0)} bytes, ` +
      `${r.simMs.toFixed(1)} ms simulated`,
  );
  for (const [k, n] of [...r.kinds].sort((a, b) => b[1] - a[1])) console.log(`  ${n.toFixed(3)}  ${k}`);
}
