/** Keep-alive and the early PING after a steady peer falls silent (lib/transport/liveness.ts). */
import { Liveness } from "../lib/transport/liveness.ts";
import { assert, assertEquals } from "./support/assert.ts";

Deno.test("liveness: without a quiet probe, a PING comes keepAliveMs after the last packet, then every keepAliveMs", () => {
  const l = new Liveness(4500, 1500, 0);
  for (const t of [10, 20, 30]) l.onPacketReceived(t);
  assertEquals(l.keepAliveDeadline, 1530);
  assert(!l.keepAliveDue(1529));
  assert(l.keepAliveDue(1530));
  assertEquals(l.keepAliveDeadline, 3030);
  assertEquals(l.idleDeadline, 4530);
});

Deno.test("liveness: a peer talking steadily that falls silent gets one PING after quietProbeMs", () => {
  const l = new Liveness(4500, 1500, 0, 150);
  for (let t = 0; t <= 1000; t += 5) l.onPacketReceived(t); // steady: 5 ms apart
  assertEquals(l.keepAliveDeadline, 1150);
  assert(!l.keepAliveDue(1149));
  assert(l.keepAliveDue(1150));
  // One early PING per silence: then the regular keep-alive, counted from that PING.
  assertEquals(l.keepAliveDeadline, 2650);
  assert(!l.keepAliveDue(2000));
  // The PING's acknowledgement comes 400 ms after the last packet: not steady, no early PING again.
  l.onPacketReceived(1400);
  assertEquals(l.keepAliveDeadline, 2900);
});

Deno.test("liveness: an idle peer heard now and then (further apart than quietProbeMs) gets no early PING", () => {
  const l = new Liveness(4500, 1500, 0, 150);
  l.onPacketReceived(1000);
  l.onPacketReceived(2400);
  assertEquals(l.keepAliveDeadline, 3900);
  // With keep-alive off there is no PING of either kind.
  const off = new Liveness(4500, 0, 0, 150);
  off.onPacketReceived(10);
  off.onPacketReceived(15);
  assertEquals(off.keepAliveDeadline, undefined);
});
