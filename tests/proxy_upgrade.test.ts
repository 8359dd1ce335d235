/**
 * Upgrades through the data path in one process: a WebSocket crosses untouched (text, binary, a large
 * message, its close code), also at 2% loss; an upgrade the origin refuses stays HTTP on the browser's
 * connection (no raw pipe without a 101); an upgrade to a service that is down is a complete 502.
 */
import { assert, assertEquals } from "./support/assert.ts";
import WebSocket from "ws";
import { startHarness } from "./support/proxy_harness.ts";
import { connectPlain, rawExchange } from "./support/raw_http.ts";
import { freePort } from "./support/ports.ts";
import { eventually } from "./support/wait.ts";

function once<T>(ws: WebSocket, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    ws.once(type, (...args: unknown[]) => resolve((args.length > 1 ? args : args[0]) as T));
    ws.once("error", reject);
  });
}

async function websocketRoundTrip(lossRate: number) {
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
  await using t = await startHarness(`http://127.0.0.1:${origin.addr.port}`, {
    domain: "127.0.0.1",
    link: { lossRate, seed: 3 },
  });
  const ws = new WebSocket(`ws://127.0.0.1:${t.front.addr.port}/chat`);
  await once(ws, "open");
  ws.send("hello");
  assertEquals(String((await once<[Uint8Array, boolean]>(ws, "message"))[0]), "echo:hello");
  ws.send(new Uint8Array([0, 1, 2, 255]));
  const [bin] = await once<[Uint8Array, boolean]>(ws, "message");
  assertEquals(Array.from(bin), [0, 1, 2, 255]);
  const big = "x".repeat(200_000);
  ws.send(big);
  assertEquals(String((await once<[Uint8Array, boolean]>(ws, "message"))[0]), `echo:${big}`);
  const closed = once(ws, "close");
  ws.close(4001, "bye now");
  assertEquals(await originClose, { code: 4001, reason: "bye now" });
  await closed;
  assertEquals(forwardedFor, "127.0.0.1");
  await eventually(() => t.infos.length > 0, "the upgrade's request record", 1000, 10);
  assertEquals(t.infos.at(-1)?.upgrade, true);
  assertEquals(t.infos.at(-1)?.status, 101);
}

Deno.test("a WebSocket passes text, binary, a large message and its close code through untouched", () =>
  websocketRoundTrip(0));

Deno.test("a WebSocket passes through at 2% loss", () => websocketRoundTrip(0.02));

Deno.test("an upgrade the origin answers with 200 stays HTTP: the next request on the connection is routed, not piped", async () => {
  const seen: string[] = [];
  await using origin = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    seen.push(`${req.method} ${new URL(req.url).pathname} ${req.headers.get("x-forwarded-for")}`);
    return new Response("no upgrade here", { headers: { "content-type": "text/plain" } });
  });
  await using t = await startHarness(`http://127.0.0.1:${origin.addr.port}`);
  const smuggled = "GET /second HTTP/1.1\r\nHost: demo.example.com\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n";
  const [first, second] = await rawExchange(
    await connectPlain(t.front.addr.port),
    "GET /ws HTTP/1.1\r\nHost: demo.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n" + smuggled,
    "GET",
    2,
  );
  assertEquals(first.status, 200);
  assertEquals(new TextDecoder().decode(first.body), "no upgrade here");
  assertEquals(second.status, 200);
  assert(
    second.headers.some(([n]) => n.toLowerCase() === "x-request-id"),
    "the second went through the gateway",
  );
  assertEquals(seen, ["GET /ws 127.0.0.1", "GET /second 127.0.0.1"]);
});

Deno.test("an upgrade to a local service that is down is a complete 502 page", async () => {
  const port = freePort();
  await using t = await startHarness(`http://127.0.0.1:${port}`);
  const [res] = await rawExchange(
    await connectPlain(t.front.addr.port),
    "GET /ws HTTP/1.1\r\nHost: demo.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
      "Accept: application/json\r\n\r\n",
  );
  assertEquals(res.status, 502);
  assertEquals(JSON.parse(new TextDecoder().decode(res.body)).error.code, "local_unreachable");
});
