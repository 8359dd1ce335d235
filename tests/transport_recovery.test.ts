/** Loss recovery, RTT, NewReno, pacing, flow control and bookkeeping structures, unit by unit. */
import { AckTracker } from "../lib/transport/ack_tracker.ts";
import { initialWindow, NewReno, Pacer } from "../lib/transport/congestion.ts";
import { ReceiveWindow } from "../lib/transport/flow_control.ts";
import { PathMtuDiscovery } from "../lib/transport/pmtu.ts";
import { RangeSet } from "../lib/transport/range_set.ts";
import { LossRecovery } from "../lib/transport/recovery.ts";
import { RttEstimator } from "../lib/transport/rtt.ts";
import { IGNORED_FATE, PacketState, type SentPacket } from "../lib/transport/sent_packet.ts";
import { assert, assertEquals } from "./support/assert.ts";

function packet(pn: number, timeSent: number, size = 1200): SentPacket {
  return {
    packetNumber: pn,
    timeSent,
    size,
    ackEliciting: true,
    inFlight: true,
    isPmtuProbe: false,
    frames: [{ kind: "ping", fate: IGNORED_FATE }],
    state: PacketState.Outstanding,
  };
}

function setup() {
  const rtt = new RttEstimator(100);
  const cc = new NewReno(1200);
  const acked: number[] = [];
  const lost: number[] = [];
  const r = new LossRecovery(rtt, cc, 10, {
    onPacketAcked: (p) => acked.push(p.packetNumber),
    onPacketLost: (p) => lost.push(p.packetNumber),
  });
  return { rtt, cc, r, acked, lost };
}

Deno.test("RTT: the first sample sets smoothed RTT and rttvar; ack delay is subtracted later", () => {
  const rtt = new RttEstimator(333);
  rtt.update(100, 0);
  assertEquals([rtt.smoothedRtt, rtt.rttvar, rtt.minRtt], [100, 50, 100]);
  rtt.update(120, 10);
  assertEquals(rtt.smoothedRtt, 0.875 * 100 + 0.125 * 110);
  assertEquals(rtt.minRtt, 100);
  assertEquals(rtt.pto(10), rtt.smoothedRtt + 4 * rtt.rttvar + 10);
});

Deno.test("packet threshold: a packet three below the largest acknowledged is lost", () => {
  const { r, acked, lost, cc } = setup();
  for (let pn = 0; pn < 6; pn++) r.onPacketSent(packet(pn, pn));
  const before = cc.congestionWindow;
  r.onAckReceived({ type: "ack", ackDelayUs: 0, ranges: [{ smallest: 2, largest: 5 }] }, 20);
  assertEquals(acked, [2, 3, 4, 5]);
  assertEquals(lost, [0, 1].filter((pn) => pn + 3 <= 5));
  assert(cc.congestionWindow < before, "a loss halves the window");
  assertEquals(r.bytesInFlight, 0);
});

Deno.test("time threshold: a late packet is lost after 9/8 RTT, by the loss timer", () => {
  const { r, lost } = setup();
  r.onPacketSent(packet(0, 0));
  r.onPacketSent(packet(1, 1));
  r.onAckReceived({ type: "ack", ackDelayUs: 0, ranges: [{ smallest: 1, largest: 1 }] }, 21);
  assertEquals(lost, []);
  const deadline = r.lossDetectionDeadline()!;
  assertEquals(deadline, 0 + (9 / 8) * 20);
  assertEquals(r.onLossDetectionTimeout(deadline), false);
  assertEquals(lost, [0]);
});

Deno.test("PTO backs off exponentially and an ACK resets it; there is no 1-second floor", () => {
  const { r, rtt } = setup();
  rtt.update(2, 0);
  r.onPacketSent(packet(0, 0));
  const pto = rtt.pto(10);
  assert(pto < 20, `PTO ${pto} ms follows the RTT`);
  assertEquals(r.lossDetectionDeadline(), pto);
  assertEquals(r.onLossDetectionTimeout(pto), true);
  assertEquals(r.ptoCount, 1);
  assertEquals(r.lossDetectionDeadline(), 2 * pto);
  r.onAckReceived({ type: "ack", ackDelayUs: 0, ranges: [{ smallest: 0, largest: 0 }] }, 30);
  assertEquals(r.ptoCount, 0);
  assertEquals(r.lossDetectionDeadline(), undefined);
});

Deno.test("NewReno: slow start, one reduction per recovery period, congestion avoidance", () => {
  const cc = new NewReno(1200);
  assertEquals(cc.congestionWindow, initialWindow(1200));
  cc.onPacketAcked(1200, 0, 1, cc.congestionWindow);
  assertEquals(cc.congestionWindow, 12000 + 1200);
  cc.onCongestionEvent(5, 10);
  assertEquals(cc.congestionWindow, 13200 / 2);
  cc.onCongestionEvent(6, 11); // sent before recovery started: no second cut
  assertEquals(cc.congestionWindow, 6600);
  cc.onPacketAcked(1200, 8, 12, 6600); // sent during recovery: no growth
  assertEquals(cc.congestionWindow, 6600);
  for (let i = 0; i < 6; i++) cc.onPacketAcked(1200, 20, 30, 6600);
  assertEquals(cc.congestionWindow, 6600 + 1200);
  cc.onPersistentCongestion();
  assertEquals(cc.congestionWindow, 2400);
});

Deno.test("the pacer spreads a window over the RTT", () => {
  const p = new Pacer(1200, 0);
  p.update(120_000, 100, 1200); // 1.25 × 120 000 bytes per 100 ms = 1500 bytes/ms
  for (let i = 0; i < 1000 && p.timeUntilSend(0, 1200) === 0; i++) p.onPacketSent(0, 1200);
  const wait = p.timeUntilSend(0, 1200);
  assert(wait > 0 && wait <= 1200 / 1500, `waits ${wait} ms for one packet`);
  assertEquals(p.timeUntilSend(1, 1200), 0);
});

Deno.test("ACKs: every second ack-eliciting packet at once, ranges newest first, duplicates dropped", () => {
  const t = new AckTracker(10, 2);
  assert(t.onPacketReceived(0, true, 0));
  assertEquals(t.ackDue(0), false);
  assertEquals(t.ackDeadline, 10);
  assert(t.onPacketReceived(1, true, 1));
  assertEquals(t.ackDue(1), true);
  t.onAckSent();
  assert(!t.onPacketReceived(1, true, 2), "a duplicate");
  t.onPacketReceived(5, true, 3);
  assertEquals(t.ackDue(3), true, "a gap acknowledges at once");
  const ack = t.buildAckFrame(5);
  assertEquals(ack.ranges, [{ smallest: 5, largest: 5 }, { smallest: 0, largest: 1 }]);
  assertEquals(ack.ackDelayUs, 2000);
});

Deno.test("RangeSet merges, splits and removes", () => {
  const s = new RangeSet();
  s.add(10, 20);
  s.add(30, 40);
  s.add(20, 30);
  assertEquals([s.count, s.start(0), s.end(0)], [1, 10, 40]);
  s.remove(15, 25);
  assertEquals([s.count, s.start(0), s.end(0), s.start(1), s.end(1)], [2, 10, 15, 25, 40]);
  assert(s.has(10) && !s.has(15) && s.has(39) && !s.has(40));
  s.add(0, 100);
  assertEquals([s.count, s.start(0), s.end(0)], [1, 0, 100]);
});

Deno.test("the receive window doubles while the reader keeps up, up to its ceiling", () => {
  const w = new ReceiveWindow(1000, 4000, 0);
  let now = 0;
  for (let i = 0; i < 20; i++) {
    now += 1;
    w.onConsumed(500, now, 10);
  }
  assertEquals(w.windowSize, 4000);
  const slow = new ReceiveWindow(1000, 4000, 0);
  for (let i = 0; i < 20; i++) slow.onConsumed(500, (i + 1) * 1000, 10);
  assertEquals(slow.windowSize, 1000, "a slow reader keeps the window");
  assert(!slow.onReceived(slow.limit + 1), "data past the limit is refused");
});

Deno.test("PMTU search: ceiling first, then bisection; three losses fail a size", () => {
  const p = new PathMtuDiscovery(16384, true);
  assertEquals(p.current, 1200);
  assertEquals(p.probeSize(0), 16384);
  for (let i = 0; i < 3; i++) {
    p.onProbeSent();
    p.onProbeLost(16384);
  }
  const mid = p.probeSize(0)!;
  assertEquals(mid, Math.floor((1200 + 16383 + 1) / 2));
  p.onProbeSent();
  assertEquals(p.onProbeAcked(mid), mid);
  assert(p.probeSize(0)! > mid);
});
