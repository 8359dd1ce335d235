/** The TCP carrier: TLS with ALPN "hopgate/1", the PSK proof bound to the TLS connection, and the transport over it. */
import tls from "node:tls";
import { Buffer } from "node:buffer";
import { connectTcp } from "../lib/dtls/tcp_client.ts";
import { acceptTcp } from "../lib/dtls/tcp_server.ts";
import { CarrierCertificateError, DtlsAuthError } from "../lib/dtls/errors.ts";
import { carrierProof, channelBinding } from "../lib/dtls/tcp_auth.ts";
import {
  decodeAuth,
  decodeReject,
  encodeAuth,
  encodeFrame,
  FrameDecoder,
  FrameType,
  TUNNEL_ALPN,
} from "../lib/dtls/tcp_frame.ts";
import type { DatagramSession } from "../lib/dtls/session.ts";
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { lossy } from "../scripts/bench/transport_common.ts";
import { bulkBothWays, gracefulCloseDelivers, lossRepaired } from "./support/carrier_scenarios.ts";
import { DTLS_IDENTITY, DTLS_PSK } from "./support/transport_dtls.ts";
import { alpnListener, makePki, tcpPair, type TestPki } from "./support/tcp_carrier.ts";
import { seededRandom } from "../lib/testing/seeded_random.ts";
import { restartablePort } from "./support/ports.ts";

let pkiOnce: Promise<TestPki> | undefined;
const pki = () => (pkiOnce ??= makePki());

Deno.test("carrier frames: random chunking round-trips, random bytes never crash", () => {
  const random = seededRandom(7);
  for (let round = 0; round < 200; round++) {
    const payloads = Array.from(
      { length: 1 + Math.floor(random() * 8) },
      () => Uint8Array.from({ length: Math.floor(random() * 3000) }, () => Math.floor(random() * 256)),
    );
    const wire = new Uint8Array(payloads.reduce((n, p) => n + 3 + p.length, 0));
    let o = 0;
    for (const p of payloads) {
      const f = encodeFrame(FrameType.data, p);
      wire.set(f, o);
      o += f.length;
    }
    const d = new FrameDecoder();
    const got: Uint8Array[] = [];
    for (let i = 0; i < wire.length;) {
      const n = 1 + Math.floor(random() * 700);
      for (const f of d.push(wire.subarray(i, i + n))) got.push(f.payload);
      i += n;
    }
    assertEquals(
      got.map((p) => Buffer.from(p).toString("hex")),
      payloads.map((p) => Buffer.from(p).toString("hex")),
    );
    assertEquals(d.buffered, 0);
  }
  for (let round = 0; round < 2000; round++) {
    const junk = Uint8Array.from({ length: Math.floor(random() * 80) }, () => Math.floor(random() * 256));
    try {
      new FrameDecoder(300).push(junk);
    } catch (e) {
      assert((e as Error).name === "DtlsDecodeError", `decoder threw ${(e as Error).name}`);
    }
    try {
      decodeAuth(junk);
    } catch (e) {
      assert(
        (e as Error).name === "DtlsDecodeError" || e instanceof TypeError,
        `AUTH threw ${(e as Error).name}`,
      );
    }
    try {
      decodeReject(junk);
    } catch (e) {
      assert((e as Error).name === "DtlsDecodeError", `REJECT threw ${(e as Error).name}`);
    }
  }
  const auth = { identity: "app.example.com", proof: new Uint8Array(32).fill(9) };
  assertEquals(decodeAuth(encodeAuth(auth)).identity, auth.identity);
});

async function withServer(
  fn: (port: number, sessions: DatagramSession[]) => Promise<void>,
): Promise<void> {
  const sessions: DatagramSession[] = [];
  const listener = await alpnListener(await pki(), async (socket) => {
    const s = await acceptTcp(socket, {
      lookupPsk: (id) => Promise.resolve(id === DTLS_IDENTITY ? DTLS_PSK : null),
      timeoutMs: 2000,
    });
    if (s) {
      sessions.push(s);
      s.onDatagram((d) => s.send(d)); // echo
    }
  });
  try {
    await fn(listener.port, sessions);
  } finally {
    for (const s of sessions) s.close();
    await listener.close();
  }
}

Deno.test("tcp carrier: the right key gets a session whose datagrams echo back", async () => {
  await withServer(async (port, sessions) => {
    const s = await connectTcp({
      hostname: "127.0.0.1",
      port,
      serverName: "localhost",
      caPem: (await pki()).caPem,
      identity: DTLS_IDENTITY,
      psk: DTLS_PSK,
    });
    const got = new Promise<Uint8Array>((r) => s.onDatagram(r));
    s.send(new Uint8Array([1, 2, 3]));
    assertEquals([...await got], [1, 2, 3]);
    assertEquals(sessions[0].identity, DTLS_IDENTITY);
    s.close();
  });
});

Deno.test("tcp carrier: a wrong key or an unknown identity is a DtlsAuthError", async () => {
  await withServer(async (port) => {
    const caPem = (await pki()).caPem;
    const base = { hostname: "127.0.0.1", port, serverName: "localhost", caPem };
    await assertRejects(
      () => connectTcp({ ...base, identity: DTLS_IDENTITY, psk: new Uint8Array(32).fill(1) }),
      (e) => e instanceof DtlsAuthError,
    );
    await assertRejects(
      () => connectTcp({ ...base, identity: "other.example.com", psk: DTLS_PSK }),
      (e) => e instanceof DtlsAuthError,
    );
  });
});

Deno.test("tcp carrier: an untrusted certificate or a wrong name is a CarrierCertificateError", async () => {
  await withServer(async (port) => {
    const base = { hostname: "127.0.0.1", port, identity: DTLS_IDENTITY, psk: DTLS_PSK };
    await assertRejects(
      () => connectTcp({ ...base, serverName: "localhost" }),
      (e) => e instanceof CarrierCertificateError,
    );
    await assertRejects(
      () => connectTcp({ ...base, serverName: "evil.example.com", caPem: undefined }),
      (e) => e instanceof CarrierCertificateError,
    );
    const caPem = (await pki()).caPem;
    await assertRejects(
      () => connectTcp({ ...base, serverName: "evil.example.com", caPem }),
      (e) => e instanceof CarrierCertificateError,
    );
  });
});

/** A raw TLS connection to the carrier, for replaying proofs. */
function rawConnect(port: number, caPem: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      ca: caPem,
      ALPNProtocols: [TUNNEL_ALPN],
    });
    s.once("secureConnect", () => resolve(s));
    s.once("error", reject);
  });
}

function firstFrame(s: tls.TLSSocket): Promise<{ type: number; payload: Uint8Array }> {
  const d = new FrameDecoder();
  return new Promise((resolve) => {
    s.on("data", (c: Buffer) => {
      const f = d.push(new Uint8Array(c));
      if (f.length > 0) resolve(f[0]);
    });
  });
}

Deno.test("tcp carrier: a proof captured on one TLS connection is refused on another", async () => {
  await withServer(async (port) => {
    const caPem = (await pki()).caPem;
    const a = await rawConnect(port, caPem);
    const proof = carrierProof(DTLS_PSK, "client", DTLS_IDENTITY, channelBinding(a, "client")!);
    const b = await rawConnect(port, caPem);
    const answer = firstFrame(b);
    b.write(encodeFrame(FrameType.auth, encodeAuth({ identity: DTLS_IDENTITY, proof })));
    const f = await answer;
    assertEquals(f.type, FrameType.reject);
    assertEquals(decodeReject(f.payload).code, "key");
    // The same proof on its own connection is accepted: the refusal above was the binding.
    const ok = firstFrame(a);
    a.write(encodeFrame(FrameType.auth, encodeAuth({ identity: DTLS_IDENTITY, proof })));
    assertEquals((await ok).type, FrameType.accept);
    a.destroy();
    b.destroy();
  });
});

Deno.test("over the TCP carrier: 50 MB each way arrive intact without a single retransmission", async () => {
  const stats = await bulkBothWays(await tcpPair(await pki()), "the TCP carrier");
  assertEquals(stats.packetsLost, 0);
});

Deno.test("over the TCP carrier: a graceful close delivers the data, then the peer sees the close", async () => {
  await gracefulCloseDelivers(await tcpPair(await pki()));
});

Deno.test("over the TCP carrier with 2% of datagrams dropped each way: 10 MB each way arrive intact", async () => {
  let seed = 1;
  await lossRepaired(await tcpPair(await pki(), {}, (s) => lossy(s, 0.02, seed++)));
});

Deno.test("auto dialing: UDP silent → TCP, remembered; both down → UDP stays preferred", async () => {
  const { CarrierDialer } = await import("../lib/proxy/carrier_dial.ts");
  const { silentLogger } = await import("../lib/log/logger.ts");
  // A UDP socket that swallows everything: a DTLS server behind a firewall that drops UDP. Its number is
  // bound on TCP later, so it comes from below the ephemeral range (no outgoing connection takes it meanwhile).
  const port = restartablePort();
  const blackHole = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port });
  const drain = (async () => {
    try {
      for (;;) await blackHole.receive();
    } catch { /* closed */ }
  })();
  const sessions: DatagramSession[] = [];
  const pkiv = await pki();
  const abort = new AbortController();
  const dialer = (p: number) =>
    new CarrierDialer({
      mode: "auto",
      server: { hostname: "127.0.0.1", port: p },
      identity: DTLS_IDENTITY,
      psk: DTLS_PSK,
      caPem: pkiv.caPem,
      serverName: "localhost",
      logger: silentLogger,
      signal: abort.signal,
    });
  try {
    // Both down (nothing on TCP at this port): the preference stays UDP.
    const down = dialer(port);
    await assertRejects(() => down.dial());
    assertEquals(down.preferred, "udp");
    // TCP on a port whose UDP is silent: the TCP listener must share the number, so bind it there.
    const listener = await new Promise<{ close(): void }>((resolve) => {
      const server = tls.createServer(
        { cert: pkiv.certPem, key: pkiv.keyPem, ALPNProtocols: [TUNNEL_ALPN] },
        (s) => {
          acceptTcp(s, { lookupPsk: (id) => Promise.resolve(id === DTLS_IDENTITY ? DTLS_PSK : null) })
            .then((x) => x && sessions.push(x));
        },
      );
      server.listen(port, "127.0.0.1", () => resolve({ close: () => server.close() }));
    });
    try {
      const d = dialer(port);
      const t0 = performance.now();
      const first = await d.dial();
      const ms = performance.now() - t0;
      assertEquals([first.carrier, d.preferred], ["tcp", "tcp"]);
      assert(ms > 2500 && ms < 5000, `fell back after ${Math.round(ms)} ms, expected about 3 s`);
      first.session.close();
      const t1 = performance.now();
      const second = await d.dial();
      assertEquals(second.carrier, "tcp");
      assert(performance.now() - t1 < 1000, "the remembered carrier is dialed at once");
      second.session.close();
      assertEquals(await d.probeUdp(), null);
    } finally {
      listener.close();
    }
  } finally {
    for (const s of sessions) s.close();
    abort.abort();
    blackHole.close();
    await drain;
  }
});
