/** Packet size discovery when the path shrinks under a live connection: black-hole detection and fallback. */
import type { TransportStream } from "../lib/transport/types.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { connectedPair, drive, driveFor, writeData } from "./support/transport_sim.ts";
import { createHash } from "node:crypto";
import { BASE_DATAGRAM_SIZE, BLACK_HOLE_BACKOFF_MS, PathMtuDiscovery } from "../lib/transport/pmtu.ts";
import { BlackHoleDetector } from "../lib/transport/pmtu_blackhole.ts";

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

/** A sent packet's facts as loss recovery hands them to the hooks. */
function sent(packetNumber: number, timeSent: number, size: number) {
  return { packetNumber, timeSent, size, ackEliciting: true, isPmtuProbe: false };
}

/** A detector whose path was confirmed at 16384 bytes by an acknowledged probe. */
function confirmedAt16k(): BlackHoleDetector {
  const d = new BlackHoleDetector(new PathMtuDiscovery(16384, true));
  d.pmtu.onProbeSent();
  assertEquals(d.onPacketAcked({ ...sent(0, 0, 16384), isPmtuProbe: true }), 16384);
  return d;
}

const SRTT = 20;
const MAX_ACK_DELAY = 10;

Deno.test("black hole: three large packets lost across srtt + max_ack_delay, a later small one acked: back to 1200", () => {
  const d = confirmedAt16k();
  // Simulated time: large packets sent at t = 100, 115, 130 (a 30 ms span), then a small one at 140.
  d.onPacketLost(sent(1, 100, 16384));
  d.onPacketLost(sent(2, 115, 16384));
  assertEquals(d.detected(SRTT, MAX_ACK_DELAY), false, "two losses are not enough");
  d.onPacketLost(sent(3, 130, 16384));
  assertEquals(d.detected(SRTT, MAX_ACK_DELAY), false, "no smaller packet has got through yet");
  d.onPacketAcked(sent(4, 140, BASE_DATAGRAM_SIZE));
  assert(d.detected(SRTT, MAX_ACK_DELAY));
  d.fallBack(200);
  assertEquals(d.pmtu.current, BASE_DATAGRAM_SIZE);
  assertEquals(d.pmtu.blackHoles, 1);
  assertEquals(d.detected(SRTT, MAX_ACK_DELAY), false, "the evidence is spent");
  // Re-probing waits for the back-off, then starts from the ceiling; the next black hole doubles the wait.
  assertEquals(d.pmtu.probeSize(200 + BLACK_HOLE_BACKOFF_MS - 1), undefined);
  assertEquals(d.pmtu.probeSize(200 + BLACK_HOLE_BACKOFF_MS), 16384);
  d.pmtu.onProbeSent();
  d.onPacketAcked({ ...sent(5, 2300, 16384), isPmtuProbe: true });
  for (let i = 0; i < 3; i++) d.onPacketLost(sent(6 + i, 3000 + 15 * i, 16384));
  d.onPacketAcked(sent(9, 3050, BASE_DATAGRAM_SIZE));
  assert(d.detected(SRTT, MAX_ACK_DELAY));
  d.fallBack(4000);
  assertEquals(d.pmtu.probeSize(4000 + BLACK_HOLE_BACKOFF_MS), undefined, "the back-off doubled");
  assertEquals(d.pmtu.probeSize(4000 + 2 * BLACK_HOLE_BACKOFF_MS), 16384);
});

Deno.test("black hole: losses spanning less than srtt + max_ack_delay are not one", () => {
  const d = confirmedAt16k();
  for (let i = 0; i < 5; i++) d.onPacketLost(sent(1 + i, 100 + 5 * i, 16384)); // a 20 ms span
  d.onPacketAcked(sent(10, 130, BASE_DATAGRAM_SIZE));
  assertEquals(d.detected(SRTT, MAX_ACK_DELAY), false);
  assertEquals(d.pmtu.current, 16384);
});

Deno.test("black hole: a later large packet acknowledged clears the evidence (random loss)", () => {
  const d = confirmedAt16k();
  for (let i = 0; i < 3; i++) d.onPacketLost(sent(1 + i, 100 + 20 * i, 16384));
  d.onPacketAcked(sent(4, 170, 16384));
  d.onPacketAcked(sent(5, 180, BASE_DATAGRAM_SIZE));
  assertEquals(d.detected(SRTT, MAX_ACK_DELAY), false);
  // Losses of packets sent before that acknowledged large one are no evidence either.
  for (let i = 0; i < 3; i++) d.onPacketLost(sent(1 + i, 100 + 20 * i, 16384));
  d.onPacketAcked(sent(6, 190, BASE_DATAGRAM_SIZE));
  assertEquals(d.detected(SRTT, MAX_ACK_DELAY), false);
});

Deno.test("black hole: PTO probes go out at the base size from the second PTO with large packets outstanding", () => {
  const d = confirmedAt16k();
  assertEquals(d.probeAtBaseSize(1, () => true), false);
  assertEquals(d.probeAtBaseSize(2, () => false), false);
  assert(d.probeAtBaseSize(2, () => true));
  d.fallBack(0);
  assertEquals(d.probeAtBaseSize(3, () => true), false, "already at the base size");
});
