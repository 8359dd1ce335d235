import assert from "node:assert/strict";
import { silentLogger } from "../lib/log/logger.ts";
import { handleStream, type HandleStreamOptions } from "../lib/proxy/client_forward.ts";
import {
  TunnelAbortedError,
  TunnelDroppedError,
  TunnelLocalError,
  TunnelTimeoutError,
} from "../lib/proxy/errors.ts";
import type { ServedRequest } from "../lib/proxy/local_target.ts";
import { forwardHttp, type ForwardOptions } from "../lib/proxy/server_forward.ts";
import type { TransportStream } from "../lib/transport/types.ts";
import { connectionPair } from "./support/stream_pair.ts";

type Handler = (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => Response | Promise<Response>;

function origin(handler: Handler): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, handler);
}

/** A server and client joined by an in-memory connection; the client forwards to `target`. */
function tunnel(target: string, extra: Partial<HandleStreamOptions> = {}) {
  const [server, client] = connectionPair();
  const infos: ServedRequest[] = [];
  const clientStreams: TransportStream[] = [];
  client.onStream((s) => {
    clientStreams.push(s);
    handleStream(s, {
      services: [{ prefix: "/", target: new URL(target) }],
      hostMode: "rewrite",
      logger: silentLogger,
      onRequest: (i) => infos.push({ ...i }),
      ...extra,
    });
  });
  const forward = (req: Request, opts: Partial<ForwardOptions> = {}) =>
    forwardHttp(req, server, {
      requestId: "rid-1",
      remoteAddr: "198.51.100.9",
      proto: "https",
      host: "demo.example.com",
      timeoutMs: 5000,
      ...opts,
    });
  return { server, client, infos, clientStreams, forward };
}

const pub = (path: string, init?: RequestInit) => new Request(`https://demo.example.com${path}`, init);

async function sha256(stream: ReadableStream<Uint8Array> | Uint8Array): Promise<string> {
  const bytes = stream instanceof Uint8Array
    ? stream
    : new Uint8Array(await new Response(stream).arrayBuffer());
  return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

function pattern(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + (i >> 8)) & 0xff;
  return out;
}

/** A stream of `total` bytes in `chunk`-sized pieces, produced on demand. */
function chunked(data: Uint8Array, chunk: number): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= data.length) return c.close();
      c.enqueue(data.slice(off, off + chunk));
      off += chunk;
    },
  });
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, r) => t = setTimeout(() => r(new Error(`timed out waiting for ${what}`)), ms)),
  ]).finally(() => clearTimeout(t));
}

Deno.test("GET reaches the local origin with path and query, and its answer comes back", async () => {
  await using o = origin((req) => {
    const u = new URL(req.url);
    return new Response(`${req.method} ${u.pathname}${u.search}`, {
      status: 201,
      headers: { "x-origin": "yes" },
    });
  });
  const t = tunnel(`http://127.0.0.1:${o.addr.port}`);
  const res = await t.forward(pub("/a/b?x=1&y=%20z"));
  assert.equal(res.status, 201);
  assert.equal(res.headers.get("x-origin"), "yes");
  assert.equal(await res.text(), "GET /a/b?x=1&y=%20z");
  assert.equal(t.infos.at(-1)?.status, 201);
  assert.equal(t.infos.at(-1)?.path, "/a/b?x=1&y=%20z");
});

Deno.test("POST body is streamed to the origin and echoed back", async () => {
  await using o = origin(async (req) => new Response(`got:${await req.text()}`));
  const t = tunnel(`http://127.0.0.1:${o.addr.port}`);
  const res = await t.forward(pub("/echo", { method: "POST", body: "hello tunnel" }));
  assert.equal(await res.text(), "got:hello tunnel");
  assert.equal(t.infos.at(-1)?.bytesIn, 12);
});

Deno.test("HEAD and 204 answers carry no body", async () => {
  await using o = origin((req) => {
    if (new URL(req.url).pathname === "/empty") {
      return new Response(null, { status: 204, headers: { "x-a": "1" } });
    }
    return new Response("twelve bytes", { headers: { "x-len": "12" } });
  });
  const t = tunnel(`http://127.0.0.1:${o.addr.port}`);
  const head = await t.forward(pub("/doc", { method: "HEAD" }));
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("x-len"), "12");
  assert.equal(head.body, null);
  const none = await t.forward(pub("/empty", { method: "DELETE" }));
  assert.equal(none.status, 204);
  assert.equal(none.headers.get("x-a"), "1");
  assert.equal(none.body, null);
});

Deno.test("repeated Set-Cookie headers stay separate", async () => {
  await using o = origin(() => {
    const h = new Headers();
    h.append("set-cookie", "a=1; Path=/; HttpOnly");
    h.append("set-cookie", "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT");
    h.append("set-cookie", "c=3");
    return new Response("ok", { headers: h });
  });
  const t = tunnel(`http://127.0.0.1:${o.addr.port}`);
  const res = await t.forward(pub("/"));
  assert.deepEqual(res.headers.getSetCookie(), [
    "a=1; Path=/; HttpOnly",
    "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
    "c=3",
  ]);
  await res.body?.cancel();
});

Deno.test("hop-by-hop headers are dropped and X-Forwarded-* / X-Request-Id are set", async () => {
  let seen: Headers | undefined;
  await using o = origin((req) => {
    seen = req.headers;
    return new Response("ok", { headers: { "x-keep": "1" } });
  });
  const t = tunnel(`http://127.0.0.1:${o.addr.port}`);
  const res = await t.forward(
    pub("/", {
      headers: {
        connection: "keep-alive, x-secret-hop",
        "keep-alive": "timeout=5",
        "x-secret-hop": "1",
        "proxy-authorization": "Basic Zm9v",
        te: "trailers",
        "x-forwarded-for": "10.0.0.1",
        "x-request-id": "spoofed",
        "x-app": "kept",
      },
    }),
    { requestId: "rid-42" },
  );
  await res.text();
  assert.ok(seen);
  for (const h of ["keep-alive", "x-secret-hop", "proxy-authorization", "te"]) {
    assert.equal(seen.get(h), null, h);
  }
  assert.equal(seen.get("x-app"), "kept");
  assert.equal(seen.get("x-forwarded-for"), "10.0.0.1, 198.51.100.9");
  assert.equal(seen.get("x-forwarded-proto"), "https");
  assert.equal(seen.get("x-forwarded-host"), "demo.example.com");
  assert.equal(seen.get("x-request-id"), "rid-42");
  assert.equal(res.headers.get("x-keep"), "1");
});

Deno.test("Host: rewrite sends the target's host, preserve sends the public host", async () => {
  await using o = origin((req) => new Response(req.headers.get("host")));
  const target = `http://127.0.0.1:${o.addr.port}`;
  const rewrite = tunnel(target, { hostMode: "rewrite" });
  assert.equal(await (await rewrite.forward(pub("/"))).text(), `127.0.0.1:${o.addr.port}`);
  using client = Deno.createHttpClient({ allowHost: true });
  const preserve = tunnel(target, { hostMode: "preserve", httpClient: client });
  assert.equal(await (await preserve.forward(pub("/"))).text(), "demo.example.com");
});

Deno.test("a 5 MB upload and a 5 MB download stream through intact (SHA-256)", async () => {
  const data = pattern(5 * 1024 * 1024);
  const expected = await sha256(data);
  await using o = origin(async (req) => {
    if (req.method === "POST") return new Response(await sha256(req.body!));
    return new Response(chunked(data, 64 * 1024));
  });
  const t = tunnel(`http://127.0.0.1:${o.addr.port}`);
  const up = await t.forward(pub("/up", { method: "POST", body: chunked(data, 100_000) }));
  assert.equal(await up.text(), expected);
  const down = await t.forward(pub("/down"));
  assert.equal(await sha256(down.body!), expected);
  assert.equal(t.infos.at(-1)?.bytesOut, data.length);
});

Deno.test("server-sent events arrive incrementally: the first before the origin writes the second", async () => {
  let firstSeen!: () => void;
  const seen = new Promise<void>((r) => firstSeen = r);
  let secondWrittenEarly = false;
  await using o = origin(() => {
    const enc = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      async start(c) {
        c.enqueue(enc.encode("data: one\n\n"));
        const timedOut = await Promise.race([
          seen.then(() => false),
          new Promise((r) => setTimeout(() => r(true), 3000)),
        ]);
        secondWrittenEarly = timedOut as boolean;
        c.enqueue(enc.encode("data: two\n\n"));
        c.close();
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  const t = tunnel(`http://127.0.0.1:${o.addr.port}`);
  const res = await t.forward(pub("/events", { headers: { accept: "text/event-stream" } }));
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const first = await reader.read();
  assert.equal(first.value, "data: one\n\n");
  firstSeen();
  let rest = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    rest += value;
  }
  assert.equal(rest, "data: two\n\n");
  assert.equal(
    secondWrittenEarly,
    false,
    "the first event should reach us before the origin is told to go on",
  );
});

Deno.test("a local origin that is down gives TunnelLocalError 502 naming the cause", async () => {
  const l = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  const port = l.addr.port;
  l.close();
  const t = tunnel(`http://127.0.0.1:${port}`);
  const err = await t.forward(pub("/")).then(() => null, (e) => e);
  assert.ok(err instanceof TunnelLocalError, String(err));
  assert.equal(err.status, 502);
  assert.equal(err.code, "local_unreachable");
  assert.match(err.message, /refused/i);
  assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
});

Deno.test("no response head within the timeout gives TunnelTimeoutError 504 and resets the stream", async () => {
  const [server, client] = connectionPair();
  const streams: TransportStream[] = [];
  client.onStream((s) => streams.push(s)); // a client that never answers
  const err = await forwardHttp(pub("/slow"), server, {
    requestId: "r",
    remoteAddr: "1.2.3.4",
    proto: "https",
    host: "demo.example.com",
    timeoutMs: 50,
  }).then(() => null, (e) => e);
  assert.ok(err instanceof TunnelTimeoutError, String(err));
  assert.equal(err.status, 504);
  await within(streams[0].done, 1000, "the stream to be reset");
});

Deno.test("the client connection dying before the head gives TunnelDroppedError 502", async () => {
  const [server, client] = connectionPair();
  client.onStream(() => client.abort(0, "gone"));
  const err = await forwardHttp(pub("/"), server, {
    requestId: "r",
    remoteAddr: "1.2.3.4",
    proto: "https",
    host: "demo.example.com",
    timeoutMs: 2000,
  }).then(() => null, (e) => e);
  assert.ok(err instanceof TunnelDroppedError, String(err));
  assert.equal(err.status, 502);
});

Deno.test("a path no local service covers gives 404 no_service", async () => {
  const t = tunnel("http://127.0.0.1:9", {
    services: [{ prefix: "/api", target: new URL("http://127.0.0.1:9") }],
  });
  const err = await t.forward(pub("/apix")).then(() => null, (e) => e);
  assert.ok(err instanceof TunnelLocalError, String(err));
  assert.equal(err.status, 404);
  assert.equal(err.code, "no_service");
});

Deno.test("a stream reset mid-body makes the response body error", async () => {
  await using o = origin(() =>
    new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode("partial"));
        },
      }),
    )
  );
  const t = tunnel(`http://127.0.0.1:${o.addr.port}`);
  const res = await t.forward(pub("/"));
  const reader = res.body!.getReader();
  assert.equal(new TextDecoder().decode((await reader.read()).value), "partial");
  t.clientStreams[0].reset(9);
  await assert.rejects(within(reader.read(), 2000, "the body to error"));
});

Deno.test("the browser going away mid-body aborts the origin's request", async () => {
  let aborted!: () => void;
  const originSawAbort = new Promise<void>((r) => aborted = r);
  await using o = origin((req) => {
    req.signal.addEventListener("abort", () => aborted());
    return new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode("tick"));
        },
      }),
    );
  });
  const t = tunnel(`http://127.0.0.1:${o.addr.port}`);
  const browser = new AbortController();
  const res = await t.forward(pub("/stream"), { signal: browser.signal });
  const reader = res.body!.getReader();
  try {
    await reader.read();
    browser.abort();
    await within(originSawAbort, 3000, "the origin to see the abort");
  } finally {
    await reader.cancel().catch(() => {});
  }
});

Deno.test("the browser going away before the head rejects with TunnelAbortedError and aborts the origin", async () => {
  let aborted!: () => void;
  const originSawAbort = new Promise<void>((r) => aborted = r);
  let entered!: () => void;
  const originEntered = new Promise<void>((r) => entered = r);
  await using o = origin(async (req) => {
    req.signal.addEventListener("abort", () => aborted());
    entered();
    await originSawAbort;
    return new Response("too late");
  });
  const t = tunnel(`http://127.0.0.1:${o.addr.port}`);
  const browser = new AbortController();
  const pending = t.forward(pub("/slow"), { signal: browser.signal });
  await originEntered;
  browser.abort();
  const err = await pending.then(() => null, (e) => e);
  assert.ok(err instanceof TunnelAbortedError, String(err));
  await within(originSawAbort, 3000, "the origin to see the abort");
});

Deno.test("a gzip-encoded origin answer reaches the browser with a body matching its headers", async () => {
  const text = "compress me ".repeat(200);
  await using o = origin((req) => {
    const gz = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
    return new Response(gz, {
      headers: { "content-encoding": "gzip", "x-ae-seen": req.headers.get("accept-encoding") ?? "" },
    });
  });
  const t = tunnel(`http://127.0.0.1:${o.addr.port}`);
  const res = await t.forward(pub("/", { headers: { "accept-encoding": "gzip, deflate, br, zstd" } }));
  assert.equal(res.headers.get("x-ae-seen"), "deflate, zstd");
  const bytes = new Uint8Array(await res.arrayBuffer());
  const encoding = res.headers.get("content-encoding");
  const decoded = encoding === "gzip"
    ? await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).text()
    : new TextDecoder().decode(bytes);
  assert.equal(decoded, text);
});

Deno.test("an upload that keeps moving is not cut short by the response timeout", async () => {
  await using o = origin(async (req) => new Response(String((await req.arrayBuffer()).byteLength)));
  const t = tunnel(`http://127.0.0.1:${o.addr.port}`);
  let sent = 0;
  const slow = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (sent === 8) return c.close();
      await new Promise((r) => setTimeout(r, 40));
      sent++;
      c.enqueue(new Uint8Array(1000));
    },
  });
  const res = await t.forward(pub("/up", { method: "POST", body: slow }), { timeoutMs: 150 });
  assert.equal(await res.text(), "8000");
});

Deno.test("redirects and 304s from the origin are passed on, not followed", async () => {
  await using o = origin((req) => {
    if (new URL(req.url).pathname === "/old") {
      return new Response(null, { status: 302, headers: { location: "/login?next=%2Fold" } });
    }
    return new Response(null, { status: 304, headers: { etag: '"v1"' } });
  });
  const t = tunnel(`http://127.0.0.1:${o.addr.port}`);
  const moved = await t.forward(pub("/old"));
  assert.equal(moved.status, 302);
  assert.equal(moved.headers.get("location"), "/login?next=%2Fold");
  await moved.body?.cancel();
  const same = await t.forward(pub("/doc", { headers: { "if-none-match": '"v1"' } }));
  assert.equal(same.status, 304);
  assert.equal(same.headers.get("etag"), '"v1"');
  assert.equal(same.body, null);
});

Deno.test("an origin failing mid-body makes the response body error rather than end short", async () => {
  await using o = origin(() =>
    new Response(
      new ReadableStream({
        async pull(c) {
          c.enqueue(new TextEncoder().encode("first part "));
          await new Promise((r) => setTimeout(r, 20));
          c.error(new Error("origin crashed"));
        },
      }),
    )
  );
  const t = tunnel(`http://127.0.0.1:${o.addr.port}`);
  const res = await t.forward(pub("/"));
  await assert.rejects(within(res.text(), 3000, "the body to error"));
});
