/**
 * The tunnel's liveness probe (PING/PONG on the control stream, protocol 2) on in-memory
 * connections, in simulated time (the registry's and the control channel's clock): a client
 * answers, a vanished one gets its busy session aborted when its PING times out, and a client that
 * left with requests unanswered is aborted after the grace. The same on real processes and real
 * time: tunnel_lifecycle.test.ts (a SIGKILLed client, a client leaving under load). Also the control
 * handshake's own timeouts, on the same clock.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  acceptControl,
  type ControlChannel,
  HandshakeRejectedError,
  openControl,
} from "../lib/proxy/control.ts";
import {
  LEAVE_GRACE_MS,
  PROBE_INTERVAL_MS,
  PROBE_TIMEOUT_MS,
  SessionRegistry,
} from "../lib/proxy/registry.ts";
import { decode, encode, MessageReader, PROTOCOL_VERSION } from "../lib/protocol/mod.ts";
import { connectionPair, type FakeConnection } from "./support/stream_pair.ts";
import { drive, driveFor, ManualClock } from "./support/manual_clock.ts";

const welcome = () => ({
  accept: true as const,
  sessionId: "s1",
  domain: "app.test",
  publicUrl: "https://app.test",
});

function register(
  r: SessionRegistry,
  server: FakeConnection,
  control: Parameters<SessionRegistry["add"]>[0]["control"],
) {
  r.add({
    id: "s1",
    domain: "app.test",
    remoteAddress: "x",
    connectedAt: new Date(),
    requestsServed: 0,
    services: ["/"],
    connection: server,
    control,
  });
}

/** A client that says HELLO with `version` and then never reads nor answers anything. */
async function mute(client: FakeConnection, version: number) {
  const stream = await client.openStream();
  const w = stream.writable.getWriter();
  await w.write(encode({ type: "HELLO", protocolVersion: version, clientVersion: "mute", services: ["/"] }));
  w.releaseLock();
  return stream;
}

Deno.test("PING is answered by PONG; PING and PONG round-trip the codec", async () => {
  assertEquals(decode(encode({ type: "PING", seq: 7 })), { type: "PING", seq: 7 });
  assertEquals(decode(encode({ type: "PONG", seq: 4294967295 })), { type: "PONG", seq: 4294967295 });
  const [server, client] = connectionPair();
  const accepted = acceptControl(server, welcome);
  const opened = await openControl(client, { clientVersion: "test", services: ["/"] });
  const result = await accepted;
  assert(result.kind === "accepted");
  assertEquals(result.hello.protocolVersion, PROTOCOL_VERSION);
  assertEquals(result.control.canPing, true);
  for (let i = 0; i < 3; i++) assertEquals(await result.control.ping(1000), true);
  // GOODBYE still arrives after pings.
  await result.control.goodbye("bye");
  assertEquals(await opened.control.peerGoodbye, "bye");
  server.abort(0, "done");
});

/** The control channel with its PING results recorded, to show the probe really ran. */
function counting(control: ControlChannel): { control: ControlChannel; answers: boolean[] } {
  const answers: boolean[] = [];
  return {
    answers,
    control: {
      ...control,
      goodbye: (reason) => control.goodbye(reason),
      nudge: () => control.nudge(),
      async ping(timeoutMs) {
        const answered = await control.ping(timeoutMs);
        answers.push(answered);
        return answered;
      },
    },
  };
}

/** A registry on a manual clock, and a session (not yet registered) whose client answers. */
async function answeringSession() {
  const clock = new ManualClock();
  const registry = new SessionRegistry({ clock });
  const [server, client] = connectionPair();
  const accepted = acceptControl(server, welcome, { clock });
  const opened = await openControl(client, { clientVersion: "test", services: ["/"] }, { clock });
  const result = await accepted;
  assert(result.kind === "accepted");
  return { clock, registry, server, control: result.control, clientControl: opened.control };
}

Deno.test("a busy session whose client stopped answering is aborted a probe interval plus a PING timeout later; a live one is not", async () => {
  const clock = new ManualClock();
  const r = new SessionRegistry({ clock });
  const [server, client] = connectionPair();
  const accepted = acceptControl(server, welcome, { clock });
  await mute(client, PROTOCOL_VERSION);
  const result = await accepted;
  assert(result.kind === "accepted" && result.control.canPing);
  const probed = counting(result.control);
  register(r, server, probed.control);
  // A request in flight: a second stream open besides the control stream.
  await server.openStream();
  assertEquals(r.route("app.test", "/").kind, "ok");
  const due = PROBE_INTERVAL_MS + PROBE_TIMEOUT_MS;
  const info = await drive(clock, server.closed, 2 * due);
  assertEquals(clock.now(), due, "aborted when the PING sent a probe interval in timed out");
  assertMatch(info.reason, /liveness probe/);
  assertEquals(probed.answers, [false]);
  await Promise.resolve();
  assertEquals(r.route("app.test", "/").kind, "offline");

  // The same with a client that answers: still up after ten probe rounds, every PING answered.
  const live = await answeringSession();
  const probed2 = counting(live.control);
  register(live.registry, live.server, probed2.control);
  await live.server.openStream();
  live.registry.route("app.test", "/");
  await driveFor(live.clock, 10 * due);
  assertEquals(live.server.isClosed, false);
  assertEquals(live.registry.count("app.test"), 1);
  assert(probed2.answers.length >= 10, `${probed2.answers.length} probes in ${10 * due} ms`);
  assert(probed2.answers.every((a) => a), `answers: ${probed2.answers}`);
  await live.registry.closeDomain("app.test", "test over");
  assertEquals(await live.clientControl.peerGoodbye, "test over");
});

Deno.test("clients older than protocol 3 are told to upgrade themselves; newer ones to upgrade the server", async () => {
  for (const old of [1, 2]) {
    const [server, client] = connectionPair();
    const accepted = acceptControl(server, welcome);
    const stream = await mute(client, old);
    assertEquals((await accepted).kind, "rejected");
    const reject = await new MessageReader(stream.readable).expect("REJECT");
    assertEquals(reject.code, "unsupported_protocol");
    assertMatch(reject.message, /upgrade the client/);
    server.abort(0, "done");
  }

  const [server3, client3] = connectionPair();
  const accepted3 = acceptControl(server3, welcome);
  const s3 = await mute(client3, PROTOCOL_VERSION + 1);
  const rejected = await accepted3;
  assertEquals(rejected.kind, "rejected");
  const reject = await new MessageReader(s3.readable).expect("REJECT");
  assertEquals(reject.code, "unsupported_protocol");
  assertMatch(reject.message, /upgrade the server/);
  server3.abort(0, "done");
  assert(HandshakeRejectedError);
});

Deno.test("a client that said GOODBYE and left requests unanswered is aborted after the grace", async () => {
  const { clock, registry: r, server, control, clientControl } = await answeringSession();
  register(r, server, control);
  await server.openStream();
  // What the acceptor does on the client's GOODBYE.
  control.peerGoodbye.then(() => r.remove("s1"));
  await clientControl.goodbye("the client is shutting down");
  assertEquals(await control.peerGoodbye, "the client is shutting down");
  assertEquals(r.count("app.test"), 0);
  const left = clock.now();
  const info = await drive(clock, server.closed, 2 * LEAVE_GRACE_MS);
  assertEquals(clock.now() - left, LEAVE_GRACE_MS, "aborted when the grace ran out");
  assertMatch(info.reason, /left with requests unanswered/);

  // Without requests in flight nothing is left to reap: the session just goes.
  const idle = await answeringSession();
  register(idle.registry, idle.server, idle.control);
  await idle.clientControl.goodbye("bye");
  await idle.control.peerGoodbye;
  idle.registry.remove("s1");
  await driveFor(idle.clock, 3 * LEAVE_GRACE_MS);
  assertEquals(idle.server.isClosed, false);
  idle.server.abort(0, "done");
});

Deno.test("the control handshake gives up after its timeout: no stream or no HELLO (server), no WELCOME (client)", async () => {
  const clock = new ManualClock();
  const failure = (p: Promise<unknown>) => p.then(() => "no failure", (e: Error) => e.message);
  const timed = async (what: Promise<string>) => {
    const started = clock.now();
    const message = await drive(clock, what, 60_000);
    return { message, ms: clock.now() - started };
  };

  const [silent] = connectionPair();
  assertEquals(await timed(failure(acceptControl(silent, welcome, { clock, timeoutMs: 3000 }))), {
    message: "no control stream within 3000 ms",
    ms: 3000,
  });

  const [server, client] = connectionPair();
  const accepting = failure(acceptControl(server, welcome, { clock }));
  await client.openStream(); // and never a HELLO
  assertEquals(await timed(accepting), { message: "no HELLO within 10000 ms", ms: 10_000 });

  const [server2, client2] = connectionPair();
  server2.onStream(() => {}); // a server that never answers the HELLO
  const opening = failure(openControl(client2, { clientVersion: "test", services: ["/"] }, { clock }));
  assertEquals(await timed(opening), { message: "no WELCOME within 10000 ms", ms: 10_000 });
});
