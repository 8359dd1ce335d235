/** Randomised soak in simulated time: hostile links, many streams, resets; everything finishes and adds up. */
import { seededRandom } from "../lib/testing/seeded_random.ts";
import { StreamResetError } from "../lib/transport/errors.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { connectedPair, drive, driveFor, readData, writeData } from "./support/transport_sim.ts";

for (const seed of [11, 12, 13, 14, 15, 16, 17, 18]) {
  Deno.test(`soak seed ${seed}: random loss, reordering, duplication and resets on 60 streams`, async () => {
    const random = seededRandom(seed);
    const { clock, client, server } = connectedPair({
      seed,
      delayMs: 1 + random() * 30,
      jitterMs: random() * 10,
      lossRate: random() * 0.2,
      reorderRate: random() * 0.2,
      reorderDelayMs: random() * 20,
      duplicateRate: random() * 0.1,
      bandwidthBytesPerSec: 5_000_000 + random() * 50_000_000,
      queueBytes: 200_000 + random() * 2_000_000,
    });
    // The server echoes the SHA-256 of what it read, or resets when the first byte says so.
    server.onStream(async (s) => {
      try {
        const got = await readData(s);
        const w = s.writable.getWriter();
        await w.write(new TextEncoder().encode(got.sha256));
        await w.close();
      } catch { /* reset by the client */ }
    });
    const plans = Array.from({ length: 60 }, () => ({
      size: Math.floor(random() * 400_000),
      resetAfterMs: random() < 0.2 ? random() * 500 : undefined,
    }));
    const outcomes = await drive(
      clock,
      Promise.all(plans.map(async (plan, i) => {
        const s = await client.openStream();
        if (plan.resetAfterMs !== undefined) {
          const t = clock.now() + plan.resetAfterMs;
          clock.setTimeout(() => s.reset(9), Math.max(0, t - clock.now()));
        }
        try {
          const sent = await writeData(s, plan.size, i);
          const reply = await new Response(s.readable).text();
          return reply === sent ? "ok" : "corrupt";
        } catch (e) {
          return e instanceof StreamResetError && plan.resetAfterMs !== undefined ? "reset" : `error ${e}`;
        }
      })),
      3_600_000,
    );
    for (const [i, o] of outcomes.entries()) {
      assert(o === "ok" || o === "reset", `stream ${i}: ${o}`);
      if (plans[i].resetAfterMs === undefined) assertEquals(o, "ok", `stream ${i}`);
    }
    await driveFor(clock, 5_000);
    assertEquals(server.connRecv.highestReceived, client.connSend.used, "connection credit adds up");
    assertEquals(server.stats().openStreams, 0, "the server forgot every stream");
    client.abort();
  });
}
