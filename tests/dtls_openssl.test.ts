/**
 * OpenSSL as an independent peer: s_client against our server, our client adapter against
 * s_server. OpenSSL runs under `timeout 20` because it does not always exit when its input closes.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { connectDtls } from "../lib/dtls/client.ts";
import type { DatagramSession } from "../lib/dtls/session.ts";
import { collectText, freeUdpPort, hex, IDENTITY, PSK, startEchoServer } from "./support/dtls_peer.ts";
import { startRelay } from "./support/dtls_relay.ts";
import { eventually, sleep } from "./support/wait.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function openssl(args: string[]) {
  const child = new Deno.Command("timeout", {
    args: ["20", "openssl", ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = collectText(child.stdout);
  const err = collectText(child.stderr);
  const writer = child.stdin.getWriter();
  return {
    child,
    out,
    err,
    write: (s: string) => writer.write(enc.encode(s)),
    async finish(): Promise<Deno.CommandStatus> {
      await writer.close().catch(() => {});
      const status = await child.status;
      await Promise.all([out.done, err.done]);
      return status;
    },
  };
}

function sClientArgs(port: number, extra: string[] = []): string[] {
  return [
    "s_client",
    "-dtls1_2",
    "-psk",
    hex(PSK),
    "-psk_identity",
    IDENTITY,
    "-cipher",
    "PSK-AES128-GCM-SHA256",
    "-connect",
    `127.0.0.1:${port}`,
    ...extra,
  ];
}

/** Server sessions answer "ping:X" with "pong:X". */
function pongServer(limits = {}) {
  return startEchoServer({
    limits,
    onSession: (s) => {
      sessions.push(s);
      s.onDatagram((d) => {
        const text = dec.decode(d).trim();
        if (text.startsWith("ping:")) s.send(enc.encode(`pong:${text.slice(5)}\n`));
      });
    },
  });
}
let sessions: DatagramSession[] = [];

Deno.test("openssl s_client completes the handshake with our server and exchanges data both ways", async () => {
  sessions = [];
  const { server } = await pongServer();
  const p = openssl(sClientArgs(server.addr.port));
  try {
    await p.write("ping:from-openssl\n");
    await eventually(() => p.out.text().includes("pong:from-openssl"), "pong at s_client", 10_000);
    const out = p.out.text();
    assert(out.includes("Cipher is PSK-AES128-GCM-SHA256"), out);
    // OpenSSL offers RFC 7627 and RFC 5746; both are answered.
    assert(out.includes("Extended master secret: yes"), out);
    assert(out.includes("Secure Renegotiation IS supported"), out);
    assertEquals(sessions.length, 1);
    assertEquals(sessions[0].identity, IDENTITY);
    await p.finish();
    const r = await sessions[0].closed;
    assertEquals([r.code, r.remote], ["close_notify", true]);
  } finally {
    await p.finish();
    await server.close();
  }
});

Deno.test("openssl s_client with a wrong key is refused and gets no session", async () => {
  sessions = [];
  const { server } = await pongServer();
  const wrong = PSK.slice();
  wrong[31] ^= 0x80;
  const args = sClientArgs(server.addr.port);
  args[args.indexOf("-psk") + 1] = hex(wrong);
  const p = openssl(args);
  try {
    await p.write("ping:x\n");
    const status = await p.finish();
    assert(!status.success, "s_client must fail");
    assert(/alert|handshake failure|bad record mac/i.test(p.err.text() + p.out.text()), p.err.text());
    assertEquals(server.stats().sessions, 0);
  } finally {
    await server.close();
  }
});

Deno.test("our client adapter against openssl s_server, identity hint sent, data both ways", async () => {
  const port = freeUdpPort();
  const p = openssl([
    "s_server",
    "-dtls1_2",
    "-psk",
    hex(PSK),
    "-psk_identity",
    IDENTITY,
    "-psk_hint",
    "x",
    "-nocert",
    "-accept",
    `127.0.0.1:${port}`,
    "-cipher",
    "PSK-AES128-GCM-SHA256",
    "-naccept",
    "1",
  ]);
  let s: DatagramSession | undefined;
  try {
    await eventually(() => p.out.text().includes("ACCEPT"), "s_server ready", 10_000);
    await p.write("hello-from-s_server\n");
    s = await connectDtls({
      hostname: "127.0.0.1",
      port,
      identity: IDENTITY,
      psk: PSK,
      connectTimeoutMs: 2000,
    });
    const got = new Promise<Uint8Array>((r) => s?.onDatagram(r));
    s.send(enc.encode("hello-from-adapter\n"));
    assertEquals(dec.decode(await got), "hello-from-s_server\n");
    await eventually(() => p.out.text().includes("hello-from-adapter"), "s_server output", 10_000);
    assert(!p.out.text().includes("not what we expected"), p.out.text());
    s.close();
    await s.closed;
  } finally {
    s?.close();
    await p.finish();
  }
});

Deno.test("openssl s_client completes the handshake through a relay dropping 20% each way", async () => {
  sessions = [];
  // Short timers so retransmissions happen within the test's time (OpenSSL's own start at 1 s).
  const { server } = await pongServer({ retransmitInitialMs: 200 });
  const relay = startRelay({ target: server.addr, lossToServer: 0.2, lossToClient: 0.2, seed: 3 });
  const p = openssl(sClientArgs(relay.port));
  try {
    await eventually(() => sessions.length === 1, "a session through the lossy relay", 15_000);
    // Data may be lost too: repeat the ping until a pong arrives.
    for (let i = 0; !p.out.text().includes("pong:lossy"); i++) {
      assert(i < 100, "no pong through the relay");
      await p.write("ping:lossy\n");
      await sleep(100);
    }
    assert(relay.stats.dropped > 0, "the relay dropped something");
  } finally {
    await p.finish();
    await relay.close();
    await server.close();
  }
});

Deno.test("a client that restarts on the same address gets a new session after a cookie exchange", async () => {
  sessions = [];
  const { server } = await pongServer();
  const port = freeUdpPort();
  const first = openssl(sClientArgs(server.addr.port, ["-bind", `127.0.0.1:${port}`]));
  try {
    await first.write("ping:one\n");
    await eventually(() => first.out.text().includes("pong:one"), "first pong", 10_000);
    // The client dies without close_notify (SIGTERM, which `timeout` forwards to openssl):
    // its association is still alive on the server.
    first.child.kill("SIGTERM");
    // Wait for it to die before closing its stdin: on EOF it would send close_notify.
    await first.child.status;
    await first.finish();
    assertEquals(server.stats().sessions, 1);
    const second = openssl(sClientArgs(server.addr.port, ["-bind", `127.0.0.1:${port}`]));
    try {
      await second.write("ping:two\n");
      await eventually(() => second.out.text().includes("pong:two"), "second pong", 10_000);
      const r = await sessions[0].closed;
      assert(r.message.includes("restarted"), r.message);
      assertEquals(sessions.length, 2);
      assertEquals(server.stats().sessions, 1);
    } finally {
      await second.finish();
    }
  } finally {
    await server.close();
  }
});
