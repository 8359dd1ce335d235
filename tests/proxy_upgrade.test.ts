import assert from "node:assert/strict";
import { silentLogger } from "../lib/log/logger.ts";
import { handleStream } from "../lib/proxy/client_forward.ts";
import { TunnelLocalError } from "../lib/proxy/errors.ts";
import type { ServedRequest } from "../lib/proxy/local_target.ts";
import { type ByteDuplex, forwardUpgrade, rawHttpResponse } from "../lib/proxy/server_upgrade.ts";
import { errorResponse } from "../lib/pages/mod.ts";
import { connectionPair } from "./support/stream_pair.ts";
import { createConnection } from "../lib/transport/connection.ts";
import { createMemoryLink } from "../lib/transport/memory_link.ts";
import type { TransportConnection } from "../lib/transport/types.ts";

type PairFactory = () => [server: TransportConnection, client: TransportConnection];

/** The real transport over an in-memory datagram link, real time. */
const transportPair: PairFactory = () => {
  const l = createMemoryLink();
  return [createConnection(l.b, { role: "server" }), createConnection(l.a, { role: "client" })];
};

const decoder = new TextDecoder();

/** Reads an HTTP/1.1 request head off a TCP connection; returns it and a stream of the bytes after it. */
async function readHead(conn: Deno.Conn) {
  const reader = conn.readable.getReader();
  let buf = new Uint8Array(0);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error("connection closed before the head");
    const next = new Uint8Array(buf.length + value.length);
    next.set(buf);
    next.set(value, buf.length);
    buf = next;
    const end = decoder.decode(buf).indexOf("\r\n\r\n");
    if (end >= 0) {
      const [requestLine, ...headerLines] = decoder.decode(buf.subarray(0, end)).split("\r\n");
      const [method, path] = requestLine.split(" ");
      const headers = headerLines.map((l) => {
        const i = l.indexOf(":");
        return [l.slice(0, i).trim(), l.slice(i + 1).trim()] as [string, string];
      });
      let leftover: Uint8Array | undefined = buf.subarray(end + 4);
      const readable = new ReadableStream<Uint8Array>({
        async pull(c) {
          if (leftover && leftover.length > 0) {
            c.enqueue(leftover);
            leftover = undefined;
            return;
          }
          const r = await reader.read();
          if (r.done) c.close();
          else c.enqueue(r.value);
        },
        cancel: (reason) => reader.cancel(reason),
      });
      return { method, path, headers, readable };
    }
  }
}

/**
 * A raw TCP "front" on 127.0.0.1 that hands each upgrade to forwardUpgrade over an in-memory
 * tunnel whose client forwards to `target`.
 */
function front(target: string, makePair: PairFactory) {
  const [server, client] = makePair();
  const infos: ServedRequest[] = [];
  client.onStream((s) =>
    handleStream(s, {
      services: [{ prefix: "/", target: new URL(target) }],
      hostMode: "rewrite",
      logger: silentLogger,
      onRequest: (i) => infos.push({ ...i }),
    })
  );
  const listener = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  const relays: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      relays.push((async () => {
        const head = await readHead(conn);
        const socket: ByteDuplex = { readable: head.readable, writable: conn.writable };
        const result = await forwardUpgrade(head, socket, server, {
          requestId: "ws-1",
          remoteAddr: "198.51.100.9",
          proto: "https",
          host: "demo.example.com",
          timeoutMs: 5000,
        });
        if (result.ok) return result.done;
        const page = errorResponse(
          result.error.status,
          result.error.code,
          result.error.message,
          new Request("http://x/"),
          "ws-1",
        );
        const w = conn.writable.getWriter();
        await w.write(await rawHttpResponse(page));
        await w.close();
      })());
    }
  })();
  return {
    port: listener.addr.port,
    infos,
    async close() {
      listener.close();
      await accepting.catch(() => {});
      await Promise.allSettled(relays);
      await client.close(0, "test over");
      await server.closed;
    },
  };
}

function once<T extends Event>(target: EventTarget, type: string): Promise<T> {
  return new Promise((resolve) => target.addEventListener(type, (e) => resolve(e as T), { once: true }));
}

async function websocketRoundTrip(makePair: PairFactory) {
  let closeSeen!: (e: { code: number; reason: string }) => void;
  const originClose = new Promise<{ code: number; reason: string }>((r) => closeSeen = r);
  let forwardedFor = "";
  await using origin = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    forwardedFor = req.headers.get("x-forwarded-for") ?? "";
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (e) => socket.send(typeof e.data === "string" ? `echo:${e.data}` : e.data);
    socket.onclose = (e) => closeSeen({ code: e.code, reason: e.reason });
    return response;
  });
  const f = front(`http://127.0.0.1:${origin.addr.port}`, makePair);
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${f.port}/chat`);
    ws.binaryType = "arraybuffer";
    await once(ws, "open");
    ws.send("hello");
    assert.equal((await once<MessageEvent>(ws, "message")).data, "echo:hello");
    ws.send(new Uint8Array([0, 1, 2, 255]));
    const bin = (await once<MessageEvent>(ws, "message")).data as ArrayBuffer;
    assert.deepEqual(Array.from(new Uint8Array(bin)), [0, 1, 2, 255]);
    const big = "x".repeat(200_000);
    ws.send(big);
    assert.equal((await once<MessageEvent>(ws, "message")).data, `echo:${big}`);
    const closed = once<CloseEvent>(ws, "close");
    ws.close(4001, "bye now");
    assert.deepEqual(await originClose, { code: 4001, reason: "bye now" });
    await closed;
    assert.equal(forwardedFor, "198.51.100.9");
  } finally {
    await f.close();
  }
  const info = f.infos.at(-1);
  assert.equal(info?.upgrade, true);
  assert.equal(info?.status, 101);
}

Deno.test("a WebSocket passes text, binary and its close code through the tunnel untouched", () =>
  websocketRoundTrip(() => connectionPair()));

Deno.test("a WebSocket passes through the real transport too", () => websocketRoundTrip(transportPair));

Deno.test("an upgrade to a local service that is down fails before any byte is written", async () => {
  const l = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  const port = l.addr.port;
  l.close();
  const [server, client] = connectionPair();
  client.onStream((s) =>
    handleStream(s, {
      services: [{ prefix: "/", target: new URL(`http://127.0.0.1:${port}`) }],
      hostMode: "rewrite",
      logger: silentLogger,
    })
  );
  let written = 0;
  const socket: ByteDuplex = {
    readable: new ReadableStream(),
    writable: new WritableStream({ write: (c) => void (written += c.length) }),
  };
  const result = await forwardUpgrade(
    new Request("https://demo.example.com/ws?room=1", {
      headers: { upgrade: "websocket", connection: "Upgrade" },
    }),
    socket,
    server,
    { requestId: "r", remoteAddr: "1.2.3.4", proto: "https", host: "demo.example.com", timeoutMs: 2000 },
  );
  assert.equal(result.ok, false);
  assert.ok(!result.ok && result.error instanceof TunnelLocalError, String(!result.ok && result.error));
  assert.equal(result.error.status, 502);
  assert.equal(result.error.code, "local_unreachable");
  assert.match(result.error.message, /refused/i);
  assert.equal(written, 0);
});

Deno.test("the raw 502 for a failed upgrade is a complete HTTP/1.1 response", async () => {
  const page = errorResponse(502, "local_unreachable", "refused", new Request("http://x/"), "rid");
  const text = decoder.decode(await rawHttpResponse(page));
  assert.match(text, /^HTTP\/1\.1 502 /);
  const [head, body] = text.split("\r\n\r\n");
  assert.match(head, /\r\nconnection: close/);
  assert.equal(Number(/content-length: (\d+)/.exec(head)?.[1]), new TextEncoder().encode(body).length);
});
