/** How many datagrams small exchanges cost: the per-record cost, not bandwidth, limits a JavaScript tunnel. */
import { decodePacket } from "../lib/transport/packet.ts";
import { assert, assertEquals } from "./support/transport_assert.ts";
import { connectedPair, drive, driveFor } from "./support/transport_sim.ts";
import { countExchangeDatagrams } from "./support/transport_exchange_count.ts";

Deno.test("a small request and its response travel in one datagram each way, FIN and ACK included", async () => {
  const r = await countExchangeDatagrams(200, 1, 1);
  const detail = [...r.kinds].map(([k, n]) => `${k}: ${n.toFixed(2)}`).join("; ");
  assert(r.perExchange <= 2.1, `${r.perExchange.toFixed(2)} datagrams per exchange (${detail})`);
});

Deno.test("concurrent small exchanges share datagrams", async () => {
  const r = await countExchangeDatagrams(500, 32, 1);
  assert(r.perExchange < 1, `${r.perExchange.toFixed(2)} datagrams per exchange`);
});

Deno.test("data written just before a reset leaves before the RESET_STREAM, not dropped by coalescing", async () => {
  const { clock, link, client } = connectedPair({ delayMs: 1 });
  const sent: string[] = [];
  const send = link.a.send.bind(link.a);
  link.a.send = (d: Uint8Array) => {
    for (const f of decodePacket(d).frames) {
      if (f.type === "stream" && f.data.length > 0) sent.push(`data ${f.data.length}`);
      if (f.type === "reset_stream") sent.push(`reset final size ${f.finalSize}`);
    }
    send(d);
  };
  const s = await drive(clock, client.openStream());
  await driveFor(clock, 20); // past the start-up burst, so pacing lets the data go at once
  const w = s.writable.getWriter();
  await w.write(new Uint8Array(40)); // accepted: the flush is still queued
  s.reset(7);
  await driveFor(clock, 50);
  assertEquals(sent, ["data 40", "reset final size 40"]);
  client.abort();
});
