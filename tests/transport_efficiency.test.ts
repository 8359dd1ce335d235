/** How many datagrams small exchanges cost: the per-record cost, not bandwidth, limits a JavaScript tunnel. */
import { decodePacket } from "../lib/transport/packet.ts";
import { assert, assertEquals } from "./support/assert.ts";
import type { TransportStream } from "../lib/transport/types.ts";
import { connectedPair, drive, driveFor, readData } from "./support/transport_sim.ts";
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

Deno.test("no MAX_STREAM_DATA for a stream whose final size is known", async () => {
  const { clock, link, client, server } = connectedPair({ delayMs: 1 });
  let maxStreamData = 0;
  const send = link.b.send.bind(link.b);
  link.b.send = (d: Uint8Array) => {
    for (const f of decodePacket(d).frames) if (f.type === "max_stream_data") maxStreamData++;
    send(d);
  };
  // The bytes at 200 KiB are lost for 40 ms: the reader drains up to them while the FIN is known.
  let dropped = false;
  const sendA = link.a.send.bind(link.a);
  const gap = 200 * 1024;
  link.a.send = (d: Uint8Array) => {
    const hole = decodePacket(d).frames.some((f) =>
      f.type === "stream" && f.offset <= gap && f.offset + f.data.length > gap
    );
    if (hole && clock.now() < 40) dropped = true;
    else sendA(d);
  };
  const incoming = new Promise<TransportStream>((resolve) => server.onStream(resolve));
  const c = await drive(clock, client.openStream());
  const w = c.writable.getWriter();
  await w.write(new Uint8Array(400 * 1024)); // within the initial stream window, FIN included
  await w.close();
  const s = await drive(clock, incoming);
  await driveFor(clock, 20); // the FIN has arrived, the hole not yet
  const got = await drive(clock, readData(s));
  assert(dropped, "a packet was lost");
  assertEquals(got.bytes, 400 * 1024);
  assertEquals(maxStreamData, 0);
  client.abort();
});
