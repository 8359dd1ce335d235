/** How many datagrams small exchanges cost: the per-record cost, not bandwidth, limits a JavaScript tunnel. */
import { assert } from "./support/transport_assert.ts";
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
