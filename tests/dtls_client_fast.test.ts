/**
 * The client's own record path after node-dtls-client's handshake (client_takeover.ts,
 * client_records.ts, client_udp.ts): data intact both ways, replays and forgeries dropped,
 * close_notify from the server, and proof that no record goes through the library any more.
 */
import { echoWindow } from "./support/echo_window.ts";
import { assert, assertEquals, assertThrows } from "./support/assert.ts";
import { dtls } from "node-dtls-client";
import { connectDtls } from "../lib/dtls/client.ts";
import { readEstablished } from "../lib/dtls/client_takeover.ts";
import { RecordOpener, RecordSealer, SUITES } from "../lib/dtls/cipher.ts";
import { ClientRecordLayer } from "../lib/dtls/client_records.ts";
import { ReplayWindow } from "../lib/dtls/replay_window.ts";
import { CipherSuiteId, ContentType, DTLS_1_2 } from "../lib/dtls/constants.ts";
import { DtlsHandshakeError } from "../lib/dtls/errors.ts";
import type { DatagramSession } from "../lib/dtls/session.ts";
import { IDENTITY, PSK, startEchoServer } from "./support/dtls_peer.ts";
import { seededRandom } from "./support/dtls_relay.ts";
import { startClientTap } from "./support/dtls_client_tap.ts";
import { eventually, sleep } from "./support/wait.ts";

interface FastSession extends DatagramSession {
  readonly recordPath: string;
  readonly recordCounters: { sealed: number; opened: number; dropped: number };
}

function connect(port: number): Promise<FastSession> {
  return connectDtls({
    hostname: "127.0.0.1",
    port,
    identity: IDENTITY,
    psk: PSK,
    connectTimeoutMs: 2000,
  }) as Promise<
    FastSession
  >;
}

/** Counts the library's record-path calls made after its handshake: any is a silent fallback. */
function spyOnLibrary(): { calls: () => number; restore: () => void } {
  const proto = dtls.Socket.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const names = ["send", "udp_onMessage", "sendAlert"];
  const saved = names.map((n) => proto[n]);
  let calls = 0;
  for (const [i, n] of names.entries()) {
    proto[n] = function (this: { _handshakeFinished?: boolean }, ...a: unknown[]) {
      if (this._handshakeFinished) calls++;
      return saved[i].apply(this, a);
    };
  }
  return { calls: () => calls, restore: () => names.forEach((n, i) => (proto[n] = saved[i])) };
}

function payload(i: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let k = 0; k < size; k++) b[k] = (i * 131 + k * 17) & 0xff;
  if (size >= 4) new DataView(b.buffer).setUint32(0, i);
  return b;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

Deno.test("fast path: 10 000 records each way of 1..16 000 bytes intact, none through node-dtls-client", async () => {
  const spy = spyOnLibrary();
  const { server, sessions } = await startEchoServer();
  const client = await connect(server.addr.port);
  try {
    assertEquals(client.recordPath, "own");
    await eventually(() => sessions.length === 1, "server session", 2000);
    const s = sessions[0];
    s.onDatagram((d) => s.send(d));
    const N = 10_000;
    const rnd = seededRandom(11);
    const sizes = Array.from({ length: N }, (_, i) => (i === 0 ? 16_000 : 4 + Math.floor(rnd() * 15_997)));
    const tiny = [1, 2, 3];
    let tinyGot = 0;
    const w = echoWindow(N, (i) => client.send(payload(i, sizes[i])));
    client.onDatagram((d) => {
      if (d.length < 4) {
        assert(sameBytes(d, payload(0, d.length)), "tiny record corrupt");
        tinyGot++;
        w.answer();
      } else {
        const i = new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(0);
        assertEquals(d.length, sizes[i], `record ${i} size`);
        assert(sameBytes(d, payload(i, sizes[i])), `record ${i} corrupt`);
        w.answer(i);
      }
      w.next(tinyGot >= tiny.length);
    });
    for (const t of tiny) client.send(payload(0, t));
    await w.run();
    assertEquals(w.answered.size, N);
    const c = client.recordCounters;
    assert(c.sealed >= N + 3 && c.opened >= N + 3, `counters ${JSON.stringify(c)}`);
    assertEquals(spy.calls(), 0, "node-dtls-client's record path ran after the handshake");
  } finally {
    client.close();
    await client.closed;
    await server.close();
    spy.restore();
  }
});

Deno.test("fast path: a replayed server record is delivered once; tampered and wrong-key records are dropped", async () => {
  const { server, sessions } = await startEchoServer();
  const tap = startClientTap({ hostname: "127.0.0.1", port: server.addr.port });
  const client = await connect(tap.port);
  try {
    await eventually(() => sessions.length === 1, "server session", 2000);
    const received: Uint8Array[] = [];
    client.onDatagram((d) => received.push(d));
    const before = tap.toClient.length;
    sessions[0].send(new TextEncoder().encode("once"));
    await eventually(() => received.length === 1, "first delivery", 2000);
    const record = tap.toClient[before];
    // Replayed three times: the window lets none through.
    for (let i = 0; i < 3; i++) await tap.injectToClient(record);
    // Tampered: one ciphertext bit flipped.
    tap.mangleToClient = (d) => {
      const m = d.slice();
      m[m.length - 20] ^= 1;
      return m;
    };
    sessions[0].send(new TextEncoder().encode("tampered"));
    // Forged under a wrong key, far ahead in sequence: must not move the window either.
    const wrong = new RecordSealer(
      SUITES[CipherSuiteId.TLS_PSK_WITH_AES_128_GCM_SHA256],
      crypto.getRandomValues(new Uint8Array(16)),
      crypto.getRandomValues(new Uint8Array(4)),
    );
    const header = {
      type: ContentType.application_data,
      version: DTLS_1_2,
      epoch: 1,
      sequence: 1_000_000,
      length: 0,
    };
    await tap.injectToClient(wrong.seal(header, new TextEncoder().encode("forged")));
    await sleep(150);
    assertEquals(received.length, 1);
    assert(client.recordCounters.dropped >= 5, `dropped ${client.recordCounters.dropped}`);
    tap.mangleToClient = null;
    sessions[0].send(new TextEncoder().encode("after"));
    await eventually(() => received.length === 2, "delivery after the forgeries", 2000);
    assertEquals(received.map((d) => new TextDecoder().decode(d)), ["once", "after"]);
  } finally {
    client.close();
    await client.closed;
    await tap.close();
    await server.close();
  }
});

Deno.test("fast path: the server's close_notify ends the client session, which answers it; our close reaches the server", async () => {
  const { server, sessions } = await startEchoServer();
  try {
    const a = await connect(server.addr.port);
    await eventually(() => sessions.length === 1, "the server session", 5000);
    const sealedBefore = a.recordCounters.sealed;
    assertEquals(server.closeSessions(IDENTITY, "rotated"), 1);
    const r = await a.closed;
    assertEquals([r.code, r.remote], ["close_notify", true]);
    assertEquals(a.recordCounters.sealed, sealedBefore + 1, "our close_notify answer");
    assertThrows(() => a.send(Uint8Array.of(1)));

    const b = await connect(server.addr.port);
    await eventually(() => sessions.length === 2, "a second server session", 5000);
    b.close("done");
    assertEquals((await b.closed).code, "closed");
    const rs = await sessions[1].closed;
    assertEquals([rs.code, rs.remote], ["close_notify", true]);
  } finally {
    await server.close();
  }
});

Deno.test("takeover refuses a library state it does not recognise, loudly", () => {
  assertThrows(() => readEstablished({}), DtlsHandshakeError, "_handshakeFinished");
  const fake = {
    _handshakeFinished: true,
    recordLayer: {
      readEpochNr: 1,
      writeEpochNr: 1,
      epochs: [{}, { connectionState: { cipherSuite: { id: 0x00a9, algorithm: "aes-256-gcm" } } }],
    },
  };
  assertThrows(() => readEstablished(fake), DtlsHandshakeError, "cipher suite");
});

Deno.test("fast path over IPv6 loopback: the takeover rebinds a udp6 port and data flows both ways", async () => {
  let server;
  try {
    ({ server } = await startEchoServer({ hostname: "::1" }));
  } catch (e) {
    console.log(`no IPv6 loopback here (${String(e)}); nothing to test`);
    return;
  }
  const c = await connectDtls({ hostname: "::1", port: server.addr.port, identity: IDENTITY, psk: PSK });
  try {
    const got = new Promise<Uint8Array>((r) => c.onDatagram(r));
    c.send(new TextEncoder().encode("over v6"));
    assertEquals(new TextDecoder().decode(await got), "over v6");
  } finally {
    c.close();
    await c.closed;
    await server.close();
  }
});

Deno.test("client record layer fuzz: random and mutated datagrams never throw and never deliver", () => {
  const suite = SUITES[CipherSuiteId.TLS_PSK_WITH_AES_128_GCM_SHA256];
  const key = crypto.getRandomValues(new Uint8Array(16));
  const salt = crypto.getRandomValues(new Uint8Array(4));
  const layer = new ClientRecordLayer({
    sealer: new RecordSealer(suite, key, salt),
    opener: new RecordOpener(suite, key, salt),
    epoch: 1,
    nextSeq: 1,
    window: new ReplayWindow(),
    localAddress: "0.0.0.0",
    localPort: 1,
    family: "udp4",
  });
  const rnd = seededRandom(5);
  const real = layer.seal(ContentType.application_data, new Uint8Array(40))!;
  let delivered = 0;
  for (let i = 0; i < 20_000; i++) {
    let d: Uint8Array;
    if (i % 2 === 0) {
      d = new Uint8Array(Math.floor(rnd() * 120));
      for (let k = 0; k < d.length; k++) d[k] = Math.floor(rnd() * 256);
      if (d.length >= 5 && rnd() < 0.5) d.set([23, 0xfe, 0xfd, 0, 1], 0); // plausible header
    } else {
      d = real.slice();
      d[Math.floor(rnd() * d.length)] ^= 1 + Math.floor(rnd() * 255);
      if (rnd() < 0.3) d = d.subarray(0, Math.floor(rnd() * d.length));
    }
    layer.receive(d, () => delivered++);
  }
  assertEquals(delivered, 0);
  // The untouched record still opens once: forged input moved nothing.
  layer.receive(real, () => delivered++);
  layer.receive(real, () => delivered++);
  assertEquals(delivered, 1);
});
