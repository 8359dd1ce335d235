/**
 * Path events without waiting for idle timeouts: the DTLS server's stale-session hint, the
 * client's probe on a hint (a forged hint costs a PING, never the session), and the server
 * probing older sessions of a domain when a newer one arrives (in simulated time; on real
 * processes: the NAT rebinding test of tunnel_carrier.test.ts).
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { startDtlsServer } from "../lib/dtls/server.ts";
import { connectDtls } from "../lib/dtls/client.ts";
import { HintLimiter, isStaleSessionHint, STALE_SESSION_HINT } from "../lib/dtls/stale_hint.ts";
import type { DatagramSession } from "../lib/dtls/session.ts";
import { watchPath } from "../lib/proxy/path_probe.ts";
import { drive, ManualClock } from "./support/manual_clock.ts";
import { acceptControl, openControl } from "../lib/proxy/control.ts";
import { SessionRegistry, SUSPECT_TIMEOUT_MS } from "../lib/proxy/registry.ts";
import { encode, PROTOCOL_VERSION } from "../lib/protocol/mod.ts";
import { connectionPair, type FakeConnection } from "./support/stream_pair.ts";
import { startNatRelay } from "./support/nat_relay.ts";
import { DTLS_IDENTITY, DTLS_PSK } from "./support/transport_dtls.ts";

Deno.test("hint limiter: one hint per address per interval, and a global cap", () => {
  const l = new HintLimiter(500, 3);
  assert(l.allow("a", 0));
  assert(!l.allow("a", 100), "the same address again too soon");
  assert(l.allow("b", 100));
  assert(l.allow("c", 200));
  assert(!l.allow("d", 300), "the global cap of 3 per second");
  assert(l.allow("a", 1100), "a new second, the interval past");
  assert(isStaleSessionHint(STALE_SESSION_HINT));
  assert(!isStaleSessionHint(STALE_SESSION_HINT.subarray(1)));
});

Deno.test("dtls: a protected record from an address without a session gets the hint; unprotected junk does not", async () => {
  const server = await startDtlsServer({
    hostname: "127.0.0.1",
    port: 0,
    lookupPsk: () => Promise.resolve(null),
    onSession: () => {},
  });
  const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: server.addr.port };
  try {
    const silent = (p: Promise<unknown>) =>
      Promise.race([p.then(() => "answered"), new Promise((r) => setTimeout(() => r("silent"), 200))]);
    // Epoch 0, application data: nothing comes back.
    const epoch0 = new Uint8Array([23, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
    await sock.send(epoch0, to);
    const first = sock.receive();
    assertEquals(await silent(first), "silent");
    const epoch1 = epoch0.slice();
    epoch1[4] = 1;
    await sock.send(epoch1, to);
    const [got] = await first;
    assert(isStaleSessionHint(got), "the hint answers the epoch-1 record");
    // A second record at once: rate-limited, no second hint within the interval.
    await sock.send(epoch1, to);
    assertEquals(await silent(sock.receive()), "silent");
  } finally {
    sock.close();
    await server.close();
  }
});

Deno.test("dtls client: after a NAT rebinding its next record draws the hint, which reaches onPathHint", async () => {
  const server = await startDtlsServer({
    hostname: "127.0.0.1",
    port: 0,
    lookupPsk: (id) => Promise.resolve(id === DTLS_IDENTITY ? DTLS_PSK : null),
    onSession: (s) => s.onDatagram((d) => s.send(d)),
  });
  const relay = startNatRelay(server.addr);
  let session: DatagramSession | undefined;
  try {
    session = await connectDtls({
      hostname: "127.0.0.1",
      port: relay.port,
      identity: DTLS_IDENTITY,
      psk: DTLS_PSK,
    });
    const echoed = new Promise((r) => session!.onDatagram(r));
    session.send(new Uint8Array([1]));
    await echoed;
    const hinted = new Promise<string>((r) => session!.onPathHint?.(() => r("hint")));
    relay.rebind();
    session.send(new Uint8Array([2]));
    const result = await Promise.race([hinted, new Promise((r) => setTimeout(() => r("no hint"), 2000))]);
    assertEquals(result, "hint");
    assertEquals(server.stats().sessions, 1, "the old association is untouched by the stray record");
  } finally {
    session?.close();
    relay.close();
    await server.close();
  }
});

/** A session stub whose hint and peer answers the test controls. */
function stubSession() {
  let receiver: ((d: Uint8Array) => void) | null = null;
  let hint: (() => void) | null = null;
  const session = {
    id: "x",
    identity: "x",
    remoteAddress: { hostname: "", port: 0 },
    maxDatagramSize: 1200,
    send() {},
    onDatagram: (r: ((d: Uint8Array) => void) | null) => (receiver = r),
    onPathHint: (l: (() => void) | null) => (hint = l),
    close() {},
    closed: new Promise(() => {}),
  } as unknown as DatagramSession;
  return { session, hint: () => hint?.(), deliver: (d: Uint8Array) => receiver?.(d) };
}

Deno.test("path probe: a forged hint on a live path costs one nudge; on a dead path the session is declared dead", () => {
  const clock = new ManualClock();
  const stub = stubSession();
  const watched = watchPath(stub.session, clock);
  watched.session.onDatagram(() => {});
  let nudges = 0;
  const dead: string[] = [];
  let answering = true;
  watched.arm({
    nudge: () => {
      nudges++;
      // A live peer answers the PING (its ACK, its PONG) a little later.
      if (answering) clock.setTimeout(() => stub.deliver(new Uint8Array([0])), 20);
    },
    onDead: (r) => dead.push(r),
    deadlineMs: () => 500,
    clock,
  });
  stub.hint();
  stub.hint(); // a burst of hints is one probe
  clock.advance(600);
  assertEquals([nudges, dead.length], [1, 0]);
  answering = false;
  stub.hint();
  clock.advance(499);
  assertEquals(dead.length, 0);
  clock.advance(2);
  assertEquals(dead.length, 1);
  assertMatch(dead[0], /stale-session hint/);
});

async function acceptedPair(r: SessionRegistry, id: string, answer: boolean) {
  const [server, client] = connectionPair();
  const accepted = acceptControl(server, () => ({
    accept: true,
    sessionId: id,
    domain: "app.test",
    publicUrl: "https://app.test",
  }), { clock: r.clock });
  if (answer) await openControl(client, { clientVersion: "test", services: ["/"] }, { clock: r.clock });
  else {
    // A client gone silent: said HELLO, never reads again.
    const s = await client.openStream();
    const w = s.writable.getWriter();
    await w.write(
      encode({ type: "HELLO", protocolVersion: PROTOCOL_VERSION, clientVersion: "mute", services: ["/"] }),
    );
  }
  const result = await accepted;
  assert(result.kind === "accepted");
  r.add({
    id,
    domain: "app.test",
    remoteAddress: id,
    connectedAt: new Date(),
    requestsServed: 0,
    services: ["/"],
    connection: server,
    control: result.control,
  });
  return server as FakeConnection;
}

Deno.test("registry: a newer session makes older ones suspects, routed last; a silent one is aborted, a live one stays", async () => {
  const clock = new ManualClock();
  const r = new SessionRegistry({ clock });
  const stale = await acceptedPair(r, "old", false);
  const live = await acceptedPair(r, "other", true);
  await acceptedPair(r, "new", true);
  const started = clock.now();
  r.probeOthers("new");
  for (let i = 0; i < 6; i++) {
    const route = r.route("app.test", "/");
    assert(route.kind === "ok" && route.session.id === "new", "suspects are not picked while another fits");
  }
  const info = await drive(clock, stale.closed, 4 * SUSPECT_TIMEOUT_MS);
  assertMatch(info.reason, /newer session/);
  assertEquals(clock.now() - started, SUSPECT_TIMEOUT_MS, "aborted when its PING timed out");
  assertEquals(live.isClosed, false);
  assertEquals(r.list("app.test").map((s) => s.id).sort(), ["new", "other"]);
  const picked = new Set(
    [0, 1, 2, 3].map(() => (r.route("app.test", "/") as { session: { id: string } }).session.id),
  );
  assertEquals([...picked].sort(), ["new", "other"], "the live one is routed to again");
  await r.closeAll("test over");
});
