/**
 * The proxy over the real transport (Connection over an in-memory datagram link, real time):
 * checks that forwarding relies only on what TransportStream promises.
 */
import assert from "node:assert/strict";
import { silentLogger } from "../lib/log/logger.ts";
import { createConnection } from "../lib/transport/connection.ts";
import { createMemoryLink } from "../lib/transport/memory_link.ts";
import { handleStream } from "../lib/proxy/client_forward.ts";
import { acceptControl, openControl } from "../lib/proxy/control.ts";
import { forwardHttp } from "../lib/proxy/server_forward.ts";
import type { TransportConnection } from "../lib/transport/types.ts";

async function withTunnel(
  target: string,
  fn: (server: TransportConnection) => Promise<void>,
  link: Parameters<typeof createMemoryLink>[0] = {},
) {
  const l = createMemoryLink(link);
  const client = createConnection(l.a, { role: "client" });
  const server = createConnection(l.b, { role: "server" });
  client.onStream((s) =>
    handleStream(s, {
      services: [{ prefix: "/", target: new URL(target) }],
      hostMode: "rewrite",
      logger: silentLogger,
    })
  );
  try {
    await fn(server);
  } finally {
    await client.close(0, "test over");
    await server.closed;
  }
}

const opts = {
  requestId: "r1",
  remoteAddr: "198.51.100.9",
  proto: "https" as const,
  host: "demo.example.com",
};
const pub = (path: string, init?: RequestInit) => new Request(`https://demo.example.com${path}`, init);

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(d)).map((b) => b.toString(16).padStart(2, "0")).join("");
}

function pattern(size: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 7 + (i >> 10)) & 0xff;
  return out;
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, r) => t = setTimeout(() => r(new Error(`timed out waiting for ${what}`)), ms)),
  ]).finally(() => clearTimeout(t));
}

Deno.test("over the real transport: control handshake, then GET and 5 MB both ways with 2% loss", async () => {
  const data = pattern(5 * 1024 * 1024);
  const expected = await sha256(data);
  await using o = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    if (req.method === "POST") return new Response(await sha256(new Uint8Array(await req.arrayBuffer())));
    if (new URL(req.url).pathname === "/big") return new Response(data);
    return new Response("hello over transport");
  });
  const l = createMemoryLink({ lossRate: 0.02, seed: 3 });
  const client = createConnection(l.a, { role: "client" });
  const server = createConnection(l.b, { role: "server" });
  try {
    const accepted = acceptControl(server, () => ({
      accept: true,
      sessionId: "s1",
      domain: "demo.example.com",
      publicUrl: "https://demo.example.com",
    }));
    const { welcome } = await openControl(client, { clientVersion: "test", services: ["/"] });
    assert.equal(welcome.sessionId, "s1");
    assert.equal((await accepted).kind, "accepted");
    client.onStream((s) =>
      handleStream(s, {
        services: [{ prefix: "/", target: new URL(`http://127.0.0.1:${o.addr.port}`) }],
        hostMode: "rewrite",
        logger: silentLogger,
      })
    );
    const get = await forwardHttp(pub("/"), server, { ...opts, timeoutMs: 10_000 });
    assert.equal(await get.text(), "hello over transport");
    const down = await forwardHttp(pub("/big"), server, { ...opts, timeoutMs: 10_000 });
    assert.equal(await sha256(new Uint8Array(await down.arrayBuffer())), expected);
    const up = await forwardHttp(pub("/up", { method: "POST", body: data }), server, {
      ...opts,
      timeoutMs: 10_000,
    });
    assert.equal(await up.text(), expected);
  } finally {
    await client.close(0, "test over");
    await server.closed;
  }
});

Deno.test("over the real transport: the browser going away mid-body aborts the origin's request", async () => {
  let aborted!: () => void;
  const originSawAbort = new Promise<void>((r) => aborted = r);
  await using o = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    req.signal.addEventListener("abort", () => aborted());
    return new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode("tick"));
        },
      }),
    );
  });
  await withTunnel(`http://127.0.0.1:${o.addr.port}`, async (server) => {
    const browser = new AbortController();
    const res = await forwardHttp(pub("/stream"), server, {
      ...opts,
      timeoutMs: 5000,
      signal: browser.signal,
    });
    const reader = res.body!.getReader();
    try {
      await reader.read();
      browser.abort();
      await within(originSawAbort, 3000, "the origin to see the abort");
    } finally {
      await reader.cancel().catch(() => {});
    }
  });
});

Deno.test("over the real transport: the client connection dying mid-body errors the response body", async () => {
  await using o = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, () =>
    new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode("partial"));
        },
      }),
    ));
  const l = createMemoryLink();
  const client = createConnection(l.a, { role: "client" });
  const server = createConnection(l.b, { role: "server" });
  client.onStream((s) =>
    handleStream(s, {
      services: [{ prefix: "/", target: new URL(`http://127.0.0.1:${o.addr.port}`) }],
      hostMode: "rewrite",
      logger: silentLogger,
    })
  );
  const res = await forwardHttp(pub("/"), server, { ...opts, timeoutMs: 5000 });
  const reader = res.body!.getReader();
  assert.equal(new TextDecoder().decode((await reader.read()).value), "partial");
  client.abort(1, "client crashed");
  await assert.rejects(within(reader.read(), 3000, "the body to error"));
  await server.closed;
});
