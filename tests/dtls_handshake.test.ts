/** The server's handshake state machine in memory, in simulated time: no sockets, no sleeping. */
import { assert, assertEquals } from "./support/assert.ts";
import { ManualClock } from "./support/manual_clock.ts";
import { silentLogger } from "../lib/log/logger.ts";
import { SUITES } from "../lib/dtls/cipher.ts";
import { AlertDescription, ContentType, HandshakeType } from "../lib/dtls/constants.ts";
import { type HandshakeResult, ServerHandshake } from "../lib/dtls/handshake.ts";
import { decodeRecords, type DtlsRecord } from "../lib/dtls/record.ts";
import { ServerSession } from "../lib/dtls/server_session.ts";
import type { CloseReason } from "../lib/dtls/session.ts";
import { FakeClient } from "./support/dtls_fake_client.ts";
import { IDENTITY, PSK } from "./support/dtls_peer.ts";
import { sleep } from "./support/wait.ts";

function setup(opts: { mtu?: number; psk?: Uint8Array; ems?: boolean; lookup?: Uint8Array | null } = {}) {
  const clock = new ManualClock();
  const sent: Uint8Array[] = [];
  const results: HandshakeResult[] = [];
  const client = new FakeClient({ identity: IDENTITY, psk: opts.psk ?? PSK, ems: opts.ems });
  const hs = new ServerHandshake(
    {
      clock,
      logger: silentLogger,
      lookupPsk: () => Promise.resolve(opts.lookup === undefined ? PSK : opts.lookup),
      send: (d) => sent.push(d),
      mtu: opts.mtu ?? 1200,
      retransmitInitialMs: 1000,
      retransmitMaxMs: 4000,
      timeoutMs: 20_000,
    },
    client.hello,
    { messageSeq: 1, body: client.helloBody, recordSeq: 1 },
    SUITES[0x00a8],
    (r) => results.push(r),
  );
  const feed = (records: DtlsRecord[]) => {
    for (const r of records) hs.handleRecord(r, r.fragment);
  };
  return { clock, sent, results, client, hs, feed };
}

/** Lets the PSK lookup's promise settle. */
const settle = () => sleep(0);

Deno.test("flight 4 is sent at once and retransmitted on a doubling timer (RFC 6347 §4.2.4.1)", () => {
  const { clock, sent, results, hs } = setup();
  const flight = sent.length;
  assert(flight >= 1);
  const times: number[] = [];
  for (let t = 0; t < 12_000; t += 100) {
    const before = sent.length;
    clock.advance(100);
    if (sent.length > before) times.push(clock.now());
  }
  // 1 s, then +2 s, then +4 s, then capped at 4 s
  assertEquals(times, [1000, 3000, 7000, 11000]);
  assertEquals(sent.length, flight * 5);
  assertEquals(hs.state, "flight4_sent");
  clock.advance(10_000);
  assertEquals(results.length, 1);
  assert(!results[0].ok, "gives up after the handshake timeout");
});

Deno.test("a fragmented flight 4 and a fragmented, reordered flight 5 complete the handshake (EMS)", async () => {
  const { sent, results, client, feed } = setup({ mtu: 60, ems: true });
  const seen = client.receiveFlight4(sent.splice(0));
  assertEquals(seen, [HandshakeType.server_hello, HandshakeType.server_hello_done]);
  const records = client.flight5(5);
  assert(records.length > 4, "ClientKeyExchange went in several fragments");
  feed(records.slice().reverse()); // Finished first: buffered until the key exchange completes
  await settle();
  assertEquals(results.length, 1);
  const r = results[0];
  assert(r.ok, r.ok ? "" : r.reason);
  assertEquals(r.established.identity, IDENTITY);
  assert(client.verifyFlight6(sent), "the server's Finished verifies");
});

Deno.test("without EMS the classic master secret is used and both Finished messages verify", async () => {
  const { sent, results, client, feed } = setup({ ems: false });
  client.receiveFlight4(sent.splice(0));
  feed(client.flight5());
  await settle();
  assert(results[0]?.ok);
  assert(client.verifyFlight6(sent));
});

Deno.test("a repeated flight 3 makes the server resend flight 4 at once", () => {
  const { sent, client, hs } = setup();
  const n = sent.length;
  const ch = client.transcript[0];
  const rec = {
    type: ContentType.handshake,
    version: 0xfefd,
    epoch: 0,
    sequence: 5,
    length: ch.length,
    fragment: ch,
  };
  hs.handleRecord(rec, rec.fragment);
  assertEquals(sent.length, 2 * n);
});

for (
  const [name, opts] of [["a wrong key", { psk: PSK.map((b) => b ^ 1) }], ["an unknown identity", {
    lookup: null,
  }]] as const
) {
  Deno.test(`${name} fails at the client's Finished with a fatal bad_record_mac alert`, async () => {
    const { sent, results, client, feed } = setup(opts);
    client.receiveFlight4(sent.splice(0));
    feed(client.flight5());
    await settle();
    assertEquals(results.length, 1);
    assert(!results[0].ok);
    assertEquals(results[0].alert, AlertDescription.bad_record_mac);
    const alert = decodeRecords(sent[sent.length - 1])[0];
    assertEquals([alert.type, alert.epoch, ...alert.fragment], [
      ContentType.alert,
      0,
      2,
      AlertDescription.bad_record_mac,
    ]);
  });
}

Deno.test("an established session resends flight 6 when flight 5 repeats, refuses renegotiation, answers close_notify", async () => {
  const { sent, results, client, feed } = setup();
  client.receiveFlight4(sent.splice(0));
  const flight5 = client.flight5();
  feed(flight5);
  await settle();
  const r = results[0];
  assert(r.ok);
  const out: Uint8Array[] = [];
  const delivered: Uint8Array[] = [];
  let ended = 0;
  const session = new ServerSession({
    id: "t",
    remoteAddress: { hostname: "127.0.0.1", port: 1 },
    established: r.established,
    maxDatagramSize: 16384,
    sendDatagram: (d) => out.push(d),
    now: () => 0,
    logger: silentLogger,
    onEnded: () => ended++,
  });
  session.onDatagram((d) => delivered.push(d));
  // Flight 6 lost: the client repeats flight 5 (new record numbers, same messages).
  const repeat = client.flight5Retransmission(flight5);
  for (const rec of repeat) session.handleRecord(rec, rec.fragment);
  assert(client.verifyFlight6(out.splice(0)), "flight 6 resent");
  // An encrypted ClientHello inside the session: a warning no_renegotiation comes back.
  const ch = client.sealed(ContentType.handshake, client.transcript[0]);
  session.handleRecord(ch, ch.fragment);
  const [warn] = decodeRecords(out.splice(0)[0]);
  assertEquals(Array.from(client.opener?.open(warn, warn.fragment) ?? []), [
    1,
    AlertDescription.no_renegotiation,
  ]);
  // Application data is delivered once; the same record again is a replay.
  const data = client.sealed(ContentType.application_data, Uint8Array.of(42));
  session.handleRecord(data, data.fragment);
  session.handleRecord(data, data.fragment);
  assertEquals(delivered.map((d) => d[0]), [42]);
  // close_notify is answered with close_notify and ends the session as a remote close.
  const bye = client.sealed(ContentType.alert, Uint8Array.of(1, 0));
  session.handleRecord(bye, bye.fragment);
  const reason: CloseReason = await session.closed;
  assertEquals([reason.code, reason.remote], ["close_notify", true]);
  const [answer] = decodeRecords(out.splice(0)[0]);
  assertEquals(Array.from(client.opener?.open(answer, answer.fragment) ?? []), [1, 0]);
  assertEquals(ended, 1);
});
