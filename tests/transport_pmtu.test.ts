/** Packet size discovery when the path shrinks under a live connection: black-hole detection and fallback. */
import type { TransportStream } from "../lib/transport/types.ts";
import { assert, assertEquals } from "./support/transport_assert.ts";
import { connectedPair, drive, driveFor, writeData } from "./support/transport_sim.ts";
import { createHash } from "node:crypto";
import { BASE_DATAGRAM_SIZE, BLACK_HOLE_BACKOFF_MS, PathMtuDiscovery } from "../lib/transport/pmtu.ts";

const MB = 1024 * 1024;

/** Reads a stream to its end, noting the simulated time of every chunk. */
async function readTimed(stream: TransportStream, now: () => number) {
  const hash = createHash("sha256");
  const times: number[] = [];
  let bytes = 0;
  for await (const chunk of stream.readable) {
    hash.update(chunk);
    bytes += chunk.length;
    times.push(now());
  }
  return { bytes, sha256: hash.digest("hex"), times };
}

/** The longest gap between chunk arrivals from `from` on. */
function longestStall(times: number[], from: number): number {
  let last = from;
  let gap = 0;
  for (const t of times) {
    if (t < from) continue;
    gap = Math.max(gap, t - last);
    last = t;
  }
  return gap;
}

Deno.test("the path MTU shrinking mid-transfer: fallback to 1200 bytes within a few PTOs, data intact", async () => {
  const { clock, link, client, server } = connectedPair({
    delayMs: 5,
    bandwidthBytesPerSec: 100 * MB,
    queueBytes: 512 * 1024,
  });
  const size = 24 * MB;
  const incoming = new Promise<TransportStream>((resolve) => server.onStream(resolve));
  const c = await drive(clock, client.openStream());
  const wrote = writeData(c, size, 5);
  const s = await drive(clock, incoming);
  const read = readTimed(s, () => clock.now());
  await driveFor(clock, 100);
  assertEquals(client.stats().maxDatagramSize, 16384, "discovery reached the link's maximum");
  const lostBefore = client.stats().packetsLost;
  const cwndBefore = client.stats().congestionWindow;
  link.setConditions({ pathMtu: 1500 });
  const t0 = clock.now();
  const pto = client.rtt.pto(10);
  const got = await drive(clock, read);
  assertEquals(got.bytes, size);
  assertEquals(got.sha256, await wrote);
  const stall = longestStall(got.times, t0);
  const st = client.stats();
  console.log(
    `stall ${stall.toFixed(1)} ms (PTO ${pto.toFixed(1)} ms), total ${(clock.now() - t0).toFixed(0)} ms, ` +
      `cwnd ${cwndBefore} → ${st.congestionWindow}, ${JSON.stringify(st)}`,
  );
  assert(stall < 5 * pto, `stalled ${stall} ms: more than a few PTOs (${pto} ms)`);
  assert(st.maxDatagramSize <= 1500, `settled at ${st.maxDatagramSize}`);
  assert(st.packetsLost > lostBefore, "large packets were lost");
  assert(st.congestionWindow >= cwndBefore / 2, "the window took at most one loss reduction, no collapse");
  client.abort();
});

Deno.test("request/response traffic survives the path MTU shrinking, then discovery settles at the new size", async () => {
  const { clock, link, client, server } = connectedPair({ delayMs: 5 });
  const body = new Uint8Array(40_000).fill(7);
  server.onStream(async (s) => {
    for await (const _ of s.readable) { /* the request */ }
    const w = s.writable.getWriter();
    await w.write(body);
    await w.close();
  });
  let done = 0;
  let shrunkAt = Infinity;
  const completions: number[] = [];
  const work = (async () => {
    for (let i = 0; i < 400; i++) {
      if (i === 100) {
        link.setConditions({ pathMtu: 1500 });
        shrunkAt = clock.now();
      }
      const s = await client.openStream();
      const w = s.writable.getWriter();
      await w.write(new Uint8Array(100));
      await w.close();
      const got = new Uint8Array(await new Response(s.readable).arrayBuffer());
      assertEquals(got.length, body.length);
      completions.push(clock.now());
      done++;
      // Requests keep coming for several seconds of simulated time, past the re-probe back-off.
      await new Promise((r) => clock.setTimeout(() => r(undefined), 15));
    }
  })();
  await drive(clock, work);
  assertEquals(done, 400);
  const stall = longestStall(completions, shrunkAt);
  const st = server.stats();
  console.log(`stall ${stall.toFixed(1)} ms, black holes ${server.pmtu.blackHoles}, ${JSON.stringify(st)}`);
  assert(stall < 200, `a request waited ${stall} ms`);
  assert(st.maxDatagramSize >= 1500 - 32 && st.maxDatagramSize <= 1500, `settled at ${st.maxDatagramSize}`);
  assertEquals(server.pmtu.blackHoles, 1, "re-probing does not fall into the hole again");
  client.abort();
});

Deno.test("after a black hole the search waits, from the ceiling, and waits longer after each one", () => {
  const p = new PathMtuDiscovery(16384, true);
  p.onProbeSent();
  assertEquals(p.onProbeAcked(16384), 16384);
  assertEquals(p.probeSize(0), undefined, "nothing left to search");
  p.onBlackHole(1000);
  assertEquals(p.current, BASE_DATAGRAM_SIZE);
  assertEquals(p.probeSize(1000 + BLACK_HOLE_BACKOFF_MS - 1), undefined);
  assertEquals(p.probeSize(1000 + BLACK_HOLE_BACKOFF_MS), 16384);
  p.onProbeSent();
  p.onProbeAcked(16384);
  p.onBlackHole(10_000);
  assertEquals(p.probeSize(10_000 + BLACK_HOLE_BACKOFF_MS), undefined, "the back-off doubled");
  assertEquals(p.probeSize(10_000 + 2 * BLACK_HOLE_BACKOFF_MS), 16384);
});

Deno.test("a short burst of dropped large datagrams (a full receive buffer) is not a black hole", async () => {
  const { clock, link, client, server } = connectedPair({ delayMs: 5, bandwidthBytesPerSec: 100 * MB });
  const incoming = new Promise<TransportStream>((resolve) => server.onStream(resolve));
  const c = await drive(clock, client.openStream());
  const wrote = writeData(c, 16 * MB, 9);
  const s = await drive(clock, incoming);
  const read = readTimed(s, () => clock.now());
  await driveFor(clock, 60);
  for (let i = 0; i < 3; i++) {
    link.setConditions({ pathMtu: 1500 }, "aToB");
    await driveFor(clock, 3);
    link.setConditions({ pathMtu: Infinity }, "aToB");
    await driveFor(clock, 40);
  }
  const got = await drive(clock, read);
  assertEquals(got.sha256, await wrote);
  assert(link.stats.aToB.dropped > 3, "large datagrams were dropped");
  assertEquals(client.pmtu.blackHoles, 0);
  assertEquals(client.stats().maxDatagramSize, 16384);
  client.abort();
});
