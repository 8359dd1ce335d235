/** The transport over the real DTLS sessions (lib/dtls) on 127.0.0.1, with the system clock. */
import type { TransportStream } from "../lib/transport/types.ts";
import { assertEquals } from "./support/assert.ts";
import { lossy } from "../scripts/bench/transport_common.ts";
import { gracefulCloseDelivers, lossRepaired } from "./support/carrier_scenarios.ts";
import { dtlsPair } from "./support/transport_dtls.ts";
import { readData, writeData } from "./support/transport_sim.ts";

const MB = 1024 * 1024;

Deno.test("over DTLS on loopback: 50 MB each way arrive intact and packets grow to 16 KiB", async () => {
  const pair = await dtlsPair();
  try {
    const incoming = new Promise<TransportStream>((resolve) => pair.server.onStream(resolve));
    const t0 = performance.now();
    const c = await pair.client.openStream();
    const cWrote = writeData(c, 50 * MB, 1);
    const s = await incoming;
    const sWrote = writeData(s, 50 * MB, 2);
    const [cGot, sGot] = await Promise.all([readData(c), readData(s)]);
    const seconds = (performance.now() - t0) / 1000;
    assertEquals(sGot.bytes, 50 * MB);
    assertEquals(cGot.bytes, 50 * MB);
    assertEquals(sGot.sha256, await cWrote);
    assertEquals(cGot.sha256, await sWrote);
    const stats = pair.client.stats();
    assertEquals(stats.maxDatagramSize, 16384);
    console.log(
      `100 MB over DTLS (both ends in one thread) in ${seconds.toFixed(2)} s, ${JSON.stringify(stats)}`,
    );
  } finally {
    await pair.close();
  }
});

Deno.test("over DTLS: a graceful close delivers the data, then the peer sees CONNECTION_CLOSE", async () => {
  await gracefulCloseDelivers(await dtlsPair());
});

Deno.test("over DTLS with 2% of datagrams dropped each way: 10 MB each way arrive intact", async () => {
  let seed = 1;
  await lossRepaired(await dtlsPair({}, (s) => lossy(s, 0.02, seed++)));
});
