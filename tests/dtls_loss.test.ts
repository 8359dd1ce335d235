/** Loss during the handshake: the server's flight retransmission and the client adapter's retries. */
import { assert, assertEquals } from "./support/assert.ts";
import { connectDtls } from "../lib/dtls/client.ts";
import type { DatagramSession } from "../lib/dtls/session.ts";
import { IDENTITY, PSK, startEchoServer } from "./support/dtls_peer.ts";
import { startRelay } from "./support/dtls_relay.ts";
import { eventually, sleep } from "./support/wait.ts";

const enc = new TextEncoder();

Deno.test("the client adapter recovers from a lost first flight", async () => {
  const { server } = await startEchoServer();
  const relay = startRelay({ target: server.addr, dropFirstToServer: 1 });
  let c: DatagramSession | undefined;
  try {
    c = await connectDtls({
      hostname: "127.0.0.1",
      port: relay.port,
      identity: IDENTITY,
      psk: PSK,
      connectTimeoutMs: 300,
      backoffInitialMs: 20,
    });
    assertEquals(relay.stats.dropped, 1);
    assertEquals(server.stats().sessions, 1);
  } finally {
    c?.close();
    await c?.closed;
    await relay.close();
    await server.close();
  }
});

// Seeds whose loss pattern hits the handshake itself (checked by the first assertion below).
for (const seed of [3, 6, 8]) {
  Deno.test(`the adapter's handshake completes through a relay dropping 20% each way (seed ${seed})`, async () => {
    const { server, sessions } = await startEchoServer({ limits: { retransmitInitialMs: 100 } });
    const relay = startRelay({ target: server.addr, lossToServer: 0.2, lossToClient: 0.2, seed });
    let c: DatagramSession | undefined;
    try {
      c = await connectDtls({
        hostname: "127.0.0.1",
        port: relay.port,
        identity: IDENTITY,
        psk: PSK,
        connectTimeoutMs: 500,
        maxAttempts: 30,
        backoffInitialMs: 10,
        backoffMaxMs: 50,
      });
      assert(relay.stats.dropped > 0, "the relay dropped something during the handshake");
      // Datagrams are still lost after the handshake; keep sending until one echo comes back.
      let echoed = false;
      c.onDatagram(() => (echoed = true));
      for (let i = 0; !echoed; i++) {
        assert(i < 100, "no echo through the relay");
        c.send(enc.encode("through the loss"));
        await sleep(20);
      }
      assert(sessions.length >= 1);
    } finally {
      c?.close();
      await c?.closed;
      await relay.close();
      await server.close();
    }
  });
}

for (const burst of [100, 1000]) {
  Deno.test(`the client keeps receiving after a burst of ${burst} lost datagrams from the server`, async () => {
    const { server, sessions } = await startEchoServer();
    const relay = startRelay({ target: server.addr });
    let c: DatagramSession | undefined;
    try {
      c = await connectDtls({ hostname: "127.0.0.1", port: relay.port, identity: IDENTITY, psk: PSK });
      const got = new Set<number>();
      c.onDatagram((d) => got.add(d[0] * 256 + d[1]));
      await eventually(() => sessions.length === 1, "the server session", 5000);
      const s = sessions[0];
      const send = (i: number) => s.send(Uint8Array.of(i >> 8, i & 0xff));
      // Records before the gap move the window well past its initial position.
      for (let i = 1000; i < 1200; i++) {
        send(i);
        if (i % 20 === 0) await sleep(2);
      }
      await eventually(() => got.size === 200, "records before the gap", 2000);
      got.clear();
      relay.dropNextToClient(burst);
      for (let i = 0; i < burst; i++) {
        send(i);
        if (i % 20 === 0) await sleep(2);
      }
      await eventually(() => relay.stats.dropped === burst, "the burst to be dropped", 2000);
      // node-dtls-client's own window refuses everything past a 64-record gap for good;
      // with our repair every record after the gap arrives.
      for (let i = burst; i < burst + 100; i++) {
        send(i);
        if (i % 20 === 0) await sleep(2);
      }
      await eventually(() => got.size === 100, `100 records after the gap (got ${got.size})`, 2000);
      for (let i = burst; i < burst + 100; i++) assert(got.has(i), `record ${i}`);
    } finally {
      c?.close();
      await c?.closed;
      await relay.close();
      await server.close();
    }
  });
}
