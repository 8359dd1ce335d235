/**
 * The data path in one process (front → gateway → transport over an in-memory link → forwarder →
 * local origin), with real HTTP clients: what passes, what is added and removed, and every failure
 * before and after the response head.
 */
import { assert, assertEquals, assertMatch, assertNotEquals, assertRejects } from "./support/assert.ts";
import { createHash } from "node:crypto";
import { PUBLIC_HOST, startHarness } from "./support/proxy_harness.ts";
import { connectPlain, rawExchange } from "./support/raw_http.ts";
import { freePort } from "./support/ports.ts";
import { eventually, sleep, within } from "./support/wait.ts";

type Handler = (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => Response | Promise<Response>;

/** An answer that never comes, until the request is aborted (so the origin can still shut down). */
function never(req: Request): Promise<Response> {
  return new Promise((resolve) => req.signal.addEventListener("abort", () => resolve(new Response("gone"))));
}

function origin(handler: Handler): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, handler);
}

const targetOf = (o: Deno.HttpServer<Deno.NetAddr>) => `http://127.0.0.1:${o.addr.port}`;

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

async function streamSha(stream: ReadableStream<Uint8Array>): Promise<string> {
  const h = createHash("sha256");
  for await (const c of stream) h.update(c);
  return h.digest("hex");
}

function pattern(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + (i >> 8)) & 0xff;
  return out;
}

/** A stream of `data` in `chunk`-sized pieces, produced on demand. */
function chunked(data: Uint8Array, chunk: number, delayMs = 0): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    async pull(c) {
      if (delayMs) await sleep(delayMs);
      if (off >= data.length) return c.close();
      c.enqueue(data.slice(off, off + chunk));
      off += chunk;
    },
  });
}

Deno.test("GET reaches the local origin with path and query, and its answer comes back", async () => {
  await using o = origin((req) => {
    const u = new URL(req.url);
    return new Response(`${req.method} ${u.pathname}${u.search}`, {
      status: 201,
      headers: { "x-origin": "yes" },
    });
  });
  await using t = await startHarness(targetOf(o));
  const res = await t.fetch("/a/b?x=1&y=%20z");
  assertEquals(res.status, 201);
  assertEquals(res.headers.get("x-origin"), "yes");
  assert(res.headers.get("x-request-id"));
  assertEquals(await res.text(), "GET /a/b?x=1&y=%20z");
  await eventually(() => t.infos.length > 0, "the client's request record", 2000, 5);
  assertEquals(t.infos.at(-1)?.status, 201);
  assertEquals(t.infos.at(-1)?.path, "/a/b");
});

Deno.test("HEAD, 204 and 304 answers carry no body; redirects are passed on, not followed", async () => {
  await using o = origin((req) => {
    const p = new URL(req.url).pathname;
    if (p === "/empty") return new Response(null, { status: 204, headers: { "x-a": "1" } });
    if (p === "/cached") return new Response(null, { status: 304, headers: { etag: '"v1"' } });
    if (p === "/moved") return new Response(null, { status: 302, headers: { location: "/elsewhere" } });
    return new Response("twelve bytes", { headers: { "x-len": "12" } });
  });
  await using t = await startHarness(targetOf(o));
  const head = await t.fetch("/doc", { method: "HEAD" });
  assertEquals(head.status, 200);
  assertEquals(head.headers.get("x-len"), "12");
  assertEquals(head.headers.get("content-length"), "12");
  assertEquals(await head.text(), "");
  const none = await t.fetch("/empty", { method: "DELETE" });
  assertEquals([none.status, none.headers.get("x-a"), await none.text()].join(), "204,1,");
  const cached = await t.fetch("/cached");
  assertEquals([cached.status, cached.headers.get("etag")].join(), '304,"v1"');
  await cached.body?.cancel();
  const moved = await t.fetch("/moved", { redirect: "manual" });
  assertEquals([moved.status, moved.headers.get("location")].join(), "302,/elsewhere");
  await moved.body?.cancel();
});

Deno.test("hop-by-hop lines are dropped, a forged X-Forwarded-For replaced, X-Forwarded-* and X-Request-Id set", async () => {
  let seen: Headers | undefined;
  await using o = origin((req) => {
    seen = req.headers;
    return new Response("ok", { headers: { "x-keep": "1" } });
  });
  await using t = await startHarness(targetOf(o));
  const [res] = await rawExchange(
    await connectPlain(t.front.addr.port),
    `GET / HTTP/1.1\r\nHost: ${PUBLIC_HOST}\r\nConnection: keep-alive, x-secret-hop\r\nKeep-Alive: timeout=5\r\n` +
      "X-Secret-Hop: 1\r\nProxy-Authorization: Basic Zm9v\r\nTE: trailers\r\nX-Forwarded-For: 10.0.0.1\r\n" +
      "X-Real-IP: 10.0.0.1\r\nX-Request-Id: spoofed\r\nX-App: kept\r\n\r\n",
  );
  assertEquals(res.status, 200);
  assert(seen);
  for (const h of ["keep-alive", "x-secret-hop", "proxy-authorization", "te", "x-real-ip"]) {
    assertEquals(seen.get(h), null, h);
  }
  assertEquals(seen.get("x-app"), "kept");
  assertEquals(seen.get("x-forwarded-for"), "127.0.0.1");
  assertEquals(seen.get("x-forwarded-proto"), "http");
  assertEquals(seen.get("x-forwarded-host"), PUBLIC_HOST);
  assertNotEquals(seen.get("x-request-id"), "spoofed");
  assertEquals(res.headers.find(([n]) => n.toLowerCase() === "x-keep")?.[1], "1");
});

Deno.test("a trusted proxy's X-Forwarded-For is kept and appended to", async () => {
  let seen: Headers | undefined;
  await using o = origin((req) => {
    seen = req.headers;
    return new Response("ok");
  });
  await using t = await startHarness(targetOf(o), { gateway: { isTrustedProxy: (a) => a === "127.0.0.1" } });
  await (await t.fetch("/", { headers: { "x-forwarded-for": "203.0.113.7" } })).text();
  assertEquals(seen?.get("x-forwarded-for"), "203.0.113.7, 127.0.0.1");
});

Deno.test("Host: rewrite sends the target's host, preserve sends the public host", async () => {
  await using o = origin((req) => new Response(req.headers.get("host")));
  {
    await using t = await startHarness(targetOf(o), { client: { hostMode: "rewrite" } });
    assertEquals(await (await t.fetch("/")).text(), `127.0.0.1:${o.addr.port}`);
  }
  await using t = await startHarness(targetOf(o), { client: { hostMode: "preserve" } });
  assertEquals(await (await t.fetch("/")).text(), PUBLIC_HOST);
});

Deno.test("a 5 MB upload and a 5 MB download stream through intact, also at 2% loss", async () => {
  const data = pattern(5 * 1024 * 1024);
  const expected = sha256(data);
  await using o = origin(async (req) => {
    if (req.method === "POST") return new Response(await streamSha(req.body!));
    return new Response(chunked(data, 64 * 1024));
  });
  for (const loss of [0, 0.02]) {
    await using t = await startHarness(targetOf(o), { link: { lossRate: loss, seed: 7 } });
    const up = await t.fetch("/up", { method: "POST", body: chunked(data, 100_000) });
    assertEquals(await up.text(), expected, `upload at ${loss}`);
    const down = await t.fetch("/down");
    assertEquals(await streamSha(down.body!), expected, `download at ${loss}`);
  }
});

Deno.test("server-sent events arrive incrementally: the first before the origin writes the second", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  await using o = origin(() => {
    const enc = new TextEncoder();
    return new Response(
      new ReadableStream({
        async start(c) {
          c.enqueue(enc.encode("data: one\n\n"));
          await released;
          c.enqueue(enc.encode("data: two\n\n"));
          c.close();
        },
      }),
      { headers: { "content-type": "text/event-stream" } },
    );
  });
  await using t = await startHarness(targetOf(o));
  const res = await t.fetch("/events");
  const reader = res.body!.getReader();
  const first = await within(reader.read(), 3000, "the first event");
  assertEquals(new TextDecoder().decode(first.value), "data: one\n\n");
  release();
  let rest = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    rest += new TextDecoder().decode(value);
  }
  assertEquals(rest, "data: two\n\n");
});

Deno.test("a local origin that is down answers 502 local_unreachable naming the cause", async () => {
  const port = freePort();
  await using t = await startHarness(`http://127.0.0.1:${port}`);
  const res = await t.fetch("/", { headers: { accept: "application/json" } });
  assertEquals(res.status, 502);
  const body = await res.json();
  assertEquals(body.error.code, "local_unreachable");
  assertMatch(body.error.message, new RegExp(`127.0.0.1:${port}`));
});

Deno.test("no response head within the timeout answers 504 and aborts the origin's request", async () => {
  let aborted!: () => void;
  const originAborted = new Promise<void>((r) => aborted = r);
  await using o = origin((req) => {
    req.signal.addEventListener("abort", () => aborted());
    return never(req);
  });
  await using t = await startHarness(targetOf(o), { gateway: { proxyTimeoutMs: 300 } });
  const res = await t.fetch("/hang", { headers: { accept: "application/json" } });
  assertEquals(res.status, 504);
  assertEquals((await res.json()).error.code, "tunnel_timeout");
  await within(originAborted, 3000, "the origin's request to be aborted");
});

Deno.test("the client connection dying before the head answers 502 tunnel_dropped", async () => {
  await using o = origin(never);
  await using t = await startHarness(targetOf(o));
  const pending = t.fetch("/hang", { method: "POST", body: "x", headers: { accept: "application/json" } });
  await sleep(100);
  t.client.abort(0, "client killed");
  const res = await within(pending, 5000, "the 502");
  assertEquals(res.status, 502);
  assertEquals((await res.json()).error.code, "tunnel_dropped");
});

Deno.test("a path no local service covers answers 404 no_service", async () => {
  await using o = origin(() => new Response("never"));
  await using t = await startHarness(targetOf(o), {
    client: { services: [{ prefix: "/api", target: new URL(targetOf(o)) }] },
  });
  const res = await t.fetch("/other", { headers: { accept: "application/json" } });
  assertEquals(res.status, 404);
  assertEquals((await res.json()).error.code, "no_service");
});

Deno.test("an origin failing mid-body makes the browser's body fail, not end short", async () => {
  await using o = origin(() =>
    new Response(
      new ReadableStream({
        async start(c) {
          c.enqueue(new Uint8Array(1000));
          await sleep(50);
          c.error(new Error("origin broke"));
        },
      }),
    )
  );
  await using t = await startHarness(targetOf(o));
  const res = await t.fetch("/broken");
  assertEquals(res.status, 200);
  await assertRejects(() => res.arrayBuffer());
});

Deno.test("the browser going away mid-body aborts the origin's request", async () => {
  let aborted!: () => void;
  const originAborted = new Promise<void>((r) => aborted = r);
  await using o = origin((req) => {
    req.signal.addEventListener("abort", () => aborted());
    return new Response(
      new ReadableStream({
        async pull(c) {
          await sleep(5);
          c.enqueue(new Uint8Array(16 * 1024));
        },
      }),
    );
  });
  await using t = await startHarness(targetOf(o));
  const ac = new AbortController();
  const res = await t.fetch("/endless", { signal: ac.signal });
  const reader = res.body!.getReader();
  await reader.read();
  ac.abort();
  await within(originAborted, 3000, "the origin's request to be aborted");
});

Deno.test("the browser going away before the head aborts the origin's request", async () => {
  let aborted!: () => void;
  const originAborted = new Promise<void>((r) => aborted = r);
  let arrived!: () => void;
  const reached = new Promise<void>((r) => arrived = r);
  await using o = origin((req) => {
    arrived();
    req.signal.addEventListener("abort", () => aborted());
    return never(req);
  });
  await using t = await startHarness(targetOf(o));
  const ac = new AbortController();
  const pending = t.fetch("/hang", { signal: ac.signal }).catch(() => "aborted");
  await within(reached, 3000, "the origin to see the request");
  ac.abort();
  assertEquals(await pending, "aborted");
  await within(originAborted, 3000, "the origin's request to be aborted");
});

Deno.test("a gzip answer reaches the browser compressed, with Content-Encoding and Content-Length", async () => {
  const plain = new TextEncoder().encode("compress me ".repeat(1000));
  const gz = new Uint8Array(
    await new Response(new Blob([plain]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
  );
  await using o = origin(() =>
    new Response(gz, { headers: { "content-encoding": "gzip", "content-length": String(gz.length) } })
  );
  await using t = await startHarness(targetOf(o));
  const [res] = await rawExchange(
    await connectPlain(t.front.addr.port),
    `GET / HTTP/1.1\r\nHost: ${PUBLIC_HOST}\r\nAccept-Encoding: gzip\r\n\r\n`,
  );
  const h = (n: string) => res.headers.find(([k]) => k.toLowerCase() === n)?.[1];
  assertEquals(h("content-encoding"), "gzip");
  assertEquals(h("content-length"), String(gz.length));
  assertEquals(sha256(res.body), sha256(gz));
});

Deno.test("an upload that keeps moving is not cut short by the response timeout", async () => {
  const data = pattern(64 * 1024);
  await using o = origin(async (req) => new Response(await streamSha(req.body!)));
  await using t = await startHarness(targetOf(o), { gateway: { proxyTimeoutMs: 400 } });
  // 16 chunks 100 ms apart: 1.6 s in all, four times the timeout.
  const res = await t.fetch("/slow-up", { method: "POST", body: chunked(data, 4096, 100) });
  assertEquals(res.status, 200);
  assertEquals(await res.text(), sha256(data));
});

Deno.test("requests in progress per client address and domain are capped: the next one gets 429", async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => release = r);
  await using o = origin(async () => {
    await held;
    return new Response("late");
  });
  await using t = await startHarness(targetOf(o), { gateway: { maxRequestsPerPeer: 3 } });
  const waiting = [1, 2, 3].map(() => t.fetch("/hold"));
  await sleep(200);
  const over = await t.fetch("/hold");
  assertEquals(over.status, 429);
  assertEquals(over.headers.get("retry-after"), "1");
  await over.body?.cancel();
  release();
  for (const r of await Promise.all(waiting)) assertEquals(await r.text(), "late");
  assertEquals(await (await t.fetch("/hold")).text(), "late");
});
