/** The transport over the real DTLS sessions (lib/dtls) on 127.0.0.1, with the system clock. */
import { assertEquals } from "./support/assert.ts";
import { lossy } from "../scripts/bench/transport_common.ts";
import { bulkBothWays, gracefulCloseDelivers, lossRepaired } from "./support/carrier_scenarios.ts";
import { dtlsPair } from "./support/transport_dtls.ts";

Deno.test("over DTLS on loopback: 50 MB each way arrive intact and packets grow to 16 KiB", async () => {
  const stats = await bulkBothWays(await dtlsPair(), "DTLS");
  assertEquals(stats.maxDatagramSize, 16384);
});

Deno.test("over DTLS: a graceful close delivers the data, then the peer sees CONNECTION_CLOSE", async () => {
  await gracefulCloseDelivers(await dtlsPair());
});

Deno.test("over DTLS with 2% of datagrams dropped each way: 10 MB each way arrive intact", async () => {
  let seed = 1;
  await lossRepaired(await dtlsPair({}, (s) => lossy(s, 0.02, seed++)));
});
