/** Bulk transfers over a lossy, reordering, duplicating memory link in simulated time arrive byte-identical. */
import type { TransportStream } from "../lib/transport/types.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { connectedPair, drive, readData, writeData } from "./support/transport_sim.ts";

const MB = 1024 * 1024;

async function bothWays(lossRate: number, reorderRate: number, duplicateRate: number, size: number) {
  const pair = connectedPair({
    seed: 42,
    delayMs: 5,
    jitterMs: lossRate > 0 ? 1 : 0,
    lossRate,
    reorderRate,
    reorderDelayMs: 3,
    duplicateRate,
    bandwidthBytesPerSec: 1000 * MB,
  });
  const { clock, client, server } = pair;
  const incoming = new Promise<TransportStream>((resolve) => server.onStream(resolve));
  const work = (async () => {
    const c = await client.openStream();
    const cWrote = writeData(c, size, 1);
    const s = await incoming;
    const sWrote = writeData(s, size, 2);
    const [cGot, sGot, cHash, sHash] = await Promise.all([readData(c), readData(s), cWrote, sWrote]);
    return { cGot, sGot, cHash, sHash };
  })();
  const r = await drive(clock, work);
  assertEquals(r.sGot.bytes, size, "client → server length");
  assertEquals(r.cGot.bytes, size, "server → client length");
  assertEquals(r.sGot.sha256, r.cHash, "client → server SHA-256");
  assertEquals(r.cGot.sha256, r.sHash, "server → client SHA-256");
  const stats = client.stats();
  if (lossRate > 0) assert(stats.retransmittedFrames > 0, "losses were repaired by retransmission");
  assertEquals([client.pmtu.blackHoles, server.pmtu.blackHoles], [0, 0], "random loss is not a black hole");
  await drive(clock, client.close());
  const info = await drive(clock, server.closed);
  assertEquals(info.kind, "remote");
  console.log(
    `loss ${lossRate}: ${
      clock.now().toFixed(0)
    } ms simulated, black holes ${client.pmtu.blackHoles}/${server.pmtu.blackHoles}, ${
      JSON.stringify(stats)
    }`,
  );
  return { simMs: clock.now(), stats };
}

Deno.test("50 MB each way arrive intact with no loss", async () => {
  const { stats } = await bothWays(0, 0, 0, 50 * MB);
  assertEquals(stats.packetsLost, 0);
  assertEquals(stats.maxDatagramSize, 16384);
});

Deno.test("50 MB each way arrive intact with 2% loss, reordering and duplication", async () => {
  const { stats } = await bothWays(0.02, 0.05, 0.02, 50 * MB);
  assert(stats.packetsLost > 0, "the link lost packets");
});

Deno.test("50 MB each way arrive intact with 10% loss, reordering and duplication", async () => {
  const { stats } = await bothWays(0.10, 0.05, 0.02, 50 * MB);
  assert(stats.packetsLost > 0, "the link lost packets");
});

Deno.test("200 concurrent streams of 256 KB each arrive intact", async () => {
  const { clock, client, server } = connectedPair({ seed: 7, delayMs: 2, lossRate: 0.01, reorderRate: 0.02 });
  const size = 256 * 1024;
  // The server echoes each stream's SHA-256 back after reading it whole.
  server.onStream((s) => {
    readData(s).then(async (got) => {
      const w = s.writable.getWriter();
      await w.write(new TextEncoder().encode(`${got.bytes}:${got.sha256}`));
      await w.close();
    });
  });
  const work = Promise.all(Array.from({ length: 200 }, async (_, i) => {
    const s = await client.openStream();
    const sent = await writeData(s, size, 100 + i);
    const reply = await new Response(s.readable).text();
    return reply === `${size}:${sent}`;
  }));
  const results = await drive(clock, work);
  assertEquals(results.filter((ok) => ok).length, 200);
  client.abort();
});
