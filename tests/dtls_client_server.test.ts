import { echoWindow } from "./support/echo_window.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "./support/assert.ts";
import { connectDtls } from "../lib/dtls/client.ts";
import { DtlsAuthError, DtlsTimeoutError } from "../lib/dtls/errors.ts";
import { type DatagramSession, DatagramTooLargeError, SessionClosedError } from "../lib/dtls/session.ts";
import { IDENTITY, lookupFor, PSK, startEchoServer } from "./support/dtls_peer.ts";
import { seededRandom } from "./support/dtls_relay.ts";
import { eventually } from "./support/wait.ts";

function connect(
  port: number,
  extra: Partial<Parameters<typeof connectDtls>[0]> = {},
): Promise<DatagramSession> {
  return connectDtls({
    hostname: "127.0.0.1",
    port,
    identity: IDENTITY,
    psk: PSK,
    connectTimeoutMs: 2000,
    ...extra,
  });
}

/** Record i: 4-byte index then bytes derived from it, so any corruption or mix-up shows. */
function makeRecord(i: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let k = 0; k < size; k++) b[k] = (i * 31 + k * 7) & 0xff;
  if (size >= 4) new DataView(b.buffer).setUint32(0, i);
  return b;
}

function checkRecord(b: Uint8Array, sizes: number[]): number {
  if (b.length < 4) {
    // 1..3-byte records carry no index; the size list says which ones have such sizes
    return -1;
  }
  const i = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0);
  assertEquals(b.length, sizes[i], `record ${i} size`);
  for (let k = 4; k < b.length; k++) {
    if (b[k] !== ((i * 31 + k * 7) & 0xff)) throw new Error(`record ${i} corrupt at byte ${k}`);
  }
  return i;
}

Deno.test("node-dtls-client and our server: handshake, then 10 000 records each way of 1 to 16 000 bytes", async () => {
  const { server, sessions } = await startEchoServer();
  const client = await connect(server.addr.port);
  try {
    await eventually(() => sessions.length === 1, "server session", 2000);
    assertEquals(sessions[0].identity, IDENTITY);
    const N = 10_000;
    const rnd = seededRandom(7);
    // Sizes 1..3 cannot carry the index; they get index-free checks. Everything else 4..16000.
    const sizes = Array.from({ length: N }, (_, i) => (i < 3 ? i + 1 : 4 + Math.floor(rnd() * 15_997)));
    sizes[3] = 16_000;
    let serverReceived = 0;
    const serverSession = sessions[0];
    serverSession.onDatagram((d) => {
      serverReceived++;
      serverSession.send(d);
    });
    let small = 0;
    const w = echoWindow(N, (i) => client.send(makeRecord(i, sizes[i])));
    client.onDatagram((d) => {
      const i = checkRecord(d, sizes);
      if (i === -1) {
        const j = d.length - 1;
        if (!w.answered.has(j)) small++;
        w.answer(j);
      } else w.answer(i);
      w.next();
    });
    await w.run();
    assertEquals(w.answered.size, N);
    assertEquals(small, 3);
    assert(serverReceived >= N, `server received ${serverReceived}`);
  } finally {
    client.close();
    await client.closed;
    await server.close();
  }
});

Deno.test("a wrong key fails fast with DtlsAuthError, creates no session, and the server keeps serving", async () => {
  const { server } = await startEchoServer();
  try {
    const wrong = PSK.slice();
    wrong[0] ^= 1;
    const t0 = Date.now();
    const err = await assertRejects(
      () => connect(server.addr.port, { psk: wrong, maxAttempts: 5 }),
      DtlsAuthError,
    );
    assertEquals(err.code, "DTLS_AUTH_FAILED");
    assert(Date.now() - t0 < 1500, `took ${Date.now() - t0} ms: was it retried?`);
    assertEquals(server.stats().sessions, 0);
    assertEquals(server.stats().handshakes, 0);
    assertEquals(server.stats().handshakesFailed, 1);
    const good = await connect(server.addr.port);
    assertEquals(server.stats().handshakesCompleted, 1);
    const echo = new Promise<Uint8Array>((r) => good.onDatagram(r));
    good.send(Uint8Array.of(1, 2, 3));
    assertEquals(Array.from(await echo), [1, 2, 3]);
    good.close();
    await good.closed;
  } finally {
    await server.close();
  }
});

Deno.test("an unknown identity fails exactly like a wrong key", async () => {
  const { server } = await startEchoServer();
  try {
    const err = await assertRejects(
      () => connect(server.addr.port, { identity: "nobody.example.com" }),
      DtlsAuthError,
    );
    assert(["bad_record_mac", "decrypt_error"].includes(err.alert ?? ""), `alert ${err.alert}`);
    assertEquals(server.sessions().length, 0);
  } finally {
    await server.close();
  }
});

Deno.test("a handshake with nobody listening times out with DtlsTimeoutError after the attempts", async () => {
  const c = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    const err = await assertRejects(
      () =>
        connect((c.addr as Deno.NetAddr).port, {
          connectTimeoutMs: 150,
          maxAttempts: 3,
          backoffInitialMs: 10,
        }),
      DtlsTimeoutError,
    );
    assertEquals(err.attempts, 3);
  } finally {
    c.close();
  }
});

Deno.test("close_notify both ways: client close ends the server session; closeSessions ends the client's", async () => {
  const { server, sessions } = await startEchoServer();
  try {
    const a = await connect(server.addr.port);
    await eventually(() => sessions.length === 1, "the server session", 5000);
    a.close("bye");
    assertEquals(await a.closed, { code: "closed", message: "bye", remote: false });
    const ra = await sessions[0].closed;
    assertEquals([ra.code, ra.remote], ["close_notify", true]);
    assertThrows(() => a.send(Uint8Array.of(1)), SessionClosedError);
    assertThrows(() => sessions[0].send(Uint8Array.of(1)), SessionClosedError);

    const b = await connect(server.addr.port);
    await eventually(() => server.sessions().length === 1, "the server session", 5000);
    assertEquals(server.closeSessions(IDENTITY, "key rotated"), 1);
    const rb = await b.closed;
    assertEquals([rb.code, rb.remote], ["close_notify", true]);
    const rs = await sessions[1].closed;
    assertEquals([rs.code, rs.message, rs.remote], ["closed", "key rotated", false]);
    assertEquals(server.stats().sessions, 0);
  } finally {
    await server.close();
  }
});

Deno.test("server shutdown sends close_notify to every client", async () => {
  const { server } = await startEchoServer();
  const c = await connect(server.addr.port);
  await server.close();
  const r = await c.closed;
  assertEquals([r.code, r.remote], ["close_notify", true]);
});

Deno.test("send past maxDatagramSize throws DatagramTooLargeError on both sides", async () => {
  const { server, sessions } = await startEchoServer({ limits: { maxDatagramSize: 1200 } });
  const c = await connect(server.addr.port);
  try {
    await eventually(() => sessions.length === 1, "the server session", 5000);
    assertEquals(sessions[0].maxDatagramSize, 1200);
    assertThrows(() => sessions[0].send(new Uint8Array(1201)), DatagramTooLargeError);
    assertEquals(c.maxDatagramSize, 16384);
    assertThrows(() => c.send(new Uint8Array(16385)), DatagramTooLargeError);
    sessions[0].send(new Uint8Array(1200));
  } finally {
    c.close();
    await c.closed;
    await server.close();
  }
});

Deno.test("a silent session is closed after the idle timeout", async () => {
  const { server, sessions } = await startEchoServer({ limits: { idleTimeoutMs: 300 } });
  const c = await connect(server.addr.port);
  try {
    await eventually(() => sessions.length === 1, "the server session", 5000);
    const r = await sessions[0].closed;
    assertEquals(r.code, "idle_timeout");
    const rc = await c.closed;
    assertEquals([rc.code, rc.remote], ["close_notify", true]);
  } finally {
    c.close();
    await server.close();
  }
});

Deno.test("200 client sessions at once against one server", async () => {
  const keys: Record<string, Uint8Array> = {};
  for (let i = 0; i < 200; i++) {
    keys[`d${i}.example.com`] = Uint8Array.from({ length: 32 }, (_, k) => (i + k) & 0xff);
  }
  const { server } = await startEchoServer({
    lookupPsk: lookupFor(keys),
    // All 200 come from 127.0.0.1: the per-address budgets are sized for one address, not for this.
    limits: { maxHandshakesPerAddress: 256, helloBurst: 512 },
  });
  const clients: DatagramSession[] = [];
  try {
    const results = await Promise.allSettled(
      Object.entries(keys).map(([identity, psk]) =>
        connect(server.addr.port, { identity, psk, connectTimeoutMs: 5000, maxAttempts: 4 })
      ),
    );
    for (const r of results) if (r.status === "fulfilled") clients.push(r.value);
    assertEquals(clients.length, 200, results.find((r) => r.status === "rejected")?.reason?.message);
    assertEquals(server.stats().sessions, 200);
    assertEquals(new Set(server.sessions().map((s) => s.identity)).size, 200);
    const echoes = await Promise.all(clients.map((c, i) => {
      const p = new Promise<Uint8Array>((r) => c.onDatagram(r));
      c.send(new TextEncoder().encode(c.identity + i));
      return p;
    }));
    echoes.forEach((e, i) => assertEquals(new TextDecoder().decode(e), clients[i].identity + i));
  } finally {
    for (const c of clients) c.close();
    await Promise.all(clients.map((c) => c.closed));
    await server.close();
  }
});

Deno.test("past maxSessions new handshakes are ignored (the client times out); existing sessions stay", async () => {
  const { server } = await startEchoServer({ limits: { maxSessions: 2 } });
  const clients: DatagramSession[] = [];
  try {
    clients.push(await connect(server.addr.port), await connect(server.addr.port));
    await assertRejects(
      () => connect(server.addr.port, { connectTimeoutMs: 200, maxAttempts: 2, backoffInitialMs: 10 }),
      DtlsTimeoutError,
    );
    assertEquals(server.stats().sessions, 2);
    assertEquals(server.stats().handshakes, 0);
    assert(server.stats().helloVerifyRequests >= 4, "cookies are still answered, statelessly");
    clients[0].close();
    await eventually(() => server.stats().sessions === 1, "a slot to free up", 2000);
    clients.push(await connect(server.addr.port));
    assertEquals(server.stats().sessions, 2);
  } finally {
    for (const c of clients) c.close();
    await Promise.all(clients.map((c) => c.closed));
    await server.close();
  }
});

Deno.test("the client resolves a host name once and connects to its address", async () => {
  const { server } = await startEchoServer();
  const c = await connectDtls({
    hostname: "localhost",
    port: server.addr.port,
    identity: IDENTITY,
    psk: PSK,
  });
  try {
    const echo = new Promise<Uint8Array>((r) => c.onDatagram(r));
    c.send(Uint8Array.of(7));
    assertEquals(Array.from(await echo), [7]);
  } finally {
    c.close();
    await c.closed;
    await server.close();
  }
});
