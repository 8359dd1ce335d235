/**
 * The request inspector: the capture store's bounds, body display, the JSON API and byte-faithful
 * replay against a raw local service, the listener, and the page in a real headless Chromium.
 */
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { openBrowser } from "./support/chromium.ts";
import { type BeginInfo, createCaptureStore, type ExchangeEvent } from "../lib/inspect/capture.ts";
import { viewBody } from "../lib/inspect/display.ts";
import { createInspectorApp } from "../lib/inspect/app.ts";
import { startInspector } from "../lib/inspect/serve.ts";
import type { HeaderLine } from "../lib/protocol/body.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function info(
  path: string,
  headers: HeaderLine[] = [["Host", "app.test"]],
  localUrl = "http://127.0.0.1:9/",
): BeginInfo {
  return { requestId: crypto.randomUUID(), method: "GET", target: path, headers, localUrl };
}

/** A local service on a raw TCP socket: records each request's exact bytes, answers with a counter. */
function rawService() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: Uint8Array[] = [];
  let hits = 0;
  (async () => {
    for await (const conn of listener) {
      (async () => {
        let buf = new Uint8Array(0);
        const chunk = new Uint8Array(65536);
        while (true) {
          const n = await conn.read(chunk);
          if (n === null) break;
          const next = new Uint8Array(buf.length + n);
          next.set(buf);
          next.set(chunk.subarray(0, n), buf.length);
          buf = next;
          const text = dec.decode(buf);
          const end = text.indexOf("\r\n\r\n");
          if (end < 0) continue;
          const len = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
          if (buf.length >= end + 4 + len) break;
        }
        requests.push(buf);
        hits++;
        const body = JSON.stringify({ hit: hits });
        await conn.write(enc.encode(
          `HTTP/1.1 201 Made\r\nContent-Type: application/json\r\nX-Hit: ${hits}\r\nX-Hit: again\r\n` +
            `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
        )).catch(() => {});
        conn.close();
      })().catch(() => {});
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/`,
    requests,
    close: () => listener.close(),
  };
}

Deno.test("capture store: the last N exchanges newest first, the oldest dropped first over the byte budget, 64 KB per body", () => {
  const events: ExchangeEvent[] = [];
  const store = createCaptureStore({ maxExchanges: 5, byteBudget: 300_000, now: () => 1_700_000_000_000 });
  store.subscribe((e) => events.push(e));
  for (let i = 1; i <= 7; i++) store.begin(info(`/n${i}`)).end({});
  assertEquals(store.list().map((x) => x.target), ["/n7", "/n6", "/n5", "/n4", "/n3"]);
  assertEquals(events.filter((e) => e.type === "dropped").map((e) => (e as { id: number }).id), [1, 2]);

  const big = store.begin(info("/big"));
  const chunk = new Uint8Array(40_000).fill(7);
  big.requestBody(chunk);
  big.requestBody(chunk);
  big.response(200, "OK", [["Content-Type", "application/octet-stream"]]);
  for (let i = 0; i < 5; i++) big.responseBody(chunk);
  big.end({});
  const x = store.list()[0];
  assertEquals([x.requestBody.kept, x.requestBody.total], [65_536, 80_000]);
  assertEquals([x.responseBody.kept, x.responseBody.total], [65_536, 200_000]);
  chunk.fill(9);
  assertEquals(x.requestBody.chunks[0][0], 7, "the store keeps a copy, not the forwarder's buffer");

  // Three big exchanges (≈ 131 KB each) cannot all fit in 300 KB: the oldest big one goes first.
  for (const p of ["/big2", "/big3"]) {
    const c = store.begin(info(p));
    c.requestBody(new Uint8Array(70_000));
    c.responseBody(new Uint8Array(70_000));
    c.end({});
  }
  assert(store.bytesHeld() <= 300_000, `held ${store.bytesHeld()}`);
  const paths = store.list().map((e) => e.target);
  assertEquals(paths.slice(0, 2), ["/big3", "/big2"]);
  assert(!paths.includes("/big"), `the oldest big exchange was dropped: ${paths}`);
  assertEquals(store.get(x.id), undefined);
});

Deno.test("display: gzip, br and deflate are undone for display; JSON pretty; images; binary as hex; a cut gzip body shows its start", () => {
  const json = enc.encode(JSON.stringify({ a: 1, b: [1, 2] }));
  const body = (bytes: Uint8Array, total = bytes.byteLength) => ({
    chunks: [bytes],
    kept: bytes.byteLength,
    total,
  });
  for (
    const [name, packed] of [["gzip", gzipSync(json)], ["br", brotliCompressSync(json)], [
      "deflate",
      deflateSync(json),
    ]] as const
  ) {
    const v = viewBody(body(new Uint8Array(packed)), [["Content-Encoding", name], [
      "Content-Type",
      "application/json",
    ]]);
    assertEquals([v.kind, v.decoded, v.text], [
      "json",
      name,
      '{\n  "a": 1,\n  "b": [\n    1,\n    2\n  ]\n}',
    ]);
  }
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]);
  const img = viewBody(body(png), [["content-type", "image/png"]]);
  assertEquals(img.kind, "image");
  assertMatch(img.dataUrl!, /^data:image\/png;base64,iVBORw0KGgo/);
  const bin = viewBody(body(new Uint8Array([0, 1, 2, 255, 65])), []);
  assertEquals(bin.kind, "binary");
  assertMatch(bin.hex!, /^00000000 {2}00 01 02 ff 41 +\.{4}A$/);
  assertEquals(viewBody(body(enc.encode("héllo")), []).text, "héllo");
  const text = enc.encode("line of text\n".repeat(20_000));
  const gz = new Uint8Array(gzipSync(text));
  const cut = viewBody(body(gz.subarray(0, Math.floor(gz.byteLength / 2)), gz.byteLength), [[
    "content-encoding",
    "gzip",
  ], [
    "content-type",
    "text/plain",
  ]]);
  assertEquals([cut.kind, cut.truncated], ["text", true]);
  assert(cut.text!.startsWith("line of text\nline of text\n"), "the decodable part is shown");
  const broken = viewBody(body(enc.encode("not gzip")), [["content-encoding", "gzip"]]);
  assertEquals(broken.kind, "binary");
  assertMatch(broken.decodeError!, /could not undo content-encoding gzip/);
});

Deno.test("API: newest first, detail, 404; replay re-sends the captured head byte for byte and records the new response", async () => {
  const svc = rawService();
  try {
    const store = createCaptureStore();
    const inspector = createInspectorApp(store);
    const app = {
      request: (path: string, init: RequestInit = {}) =>
        inspector.app.request(`http://127.0.0.1:4040${path}`, {
          ...init,
          headers: { host: "127.0.0.1:4040", "content-type": "application/json", ...init.headers },
        }),
    };
    const headers: HeaderLine[] = [["Host", "app.test"], ["X-Thing", "one"], ["x-thing", "Two"], [
      "X-Latin",
      "caf\xe9",
    ], [
      "Content-Type",
      "text/plain",
    ], ["Content-Length", "5"]];
    const c = store.begin({
      requestId: "r1",
      method: "POST",
      target: "/a%20b?q=1",
      headers,
      localUrl: svc.url,
    });
    c.requestBody(enc.encode("hello"));
    c.response(200, "OK", [["Content-Type", "text/plain"]]);
    c.responseBody(enc.encode("first"));
    c.end({});
    store.begin(info("/second")).end({ error: "reset" });

    const list = await (await app.request("/api/requests")).json();
    assertEquals(list.requests.map((r: { path: string }) => r.path), ["/second", "/a%20b?q=1"]);
    assertEquals(list.requests[1].request_bytes, 5);
    assertEquals(list.requests[0].error, "reset");
    assertEquals((await app.request("/api/requests/999")).status, 404);
    const one = await (await app.request("/api/requests/1")).json();
    assertEquals(one.request.body, { kind: "text", text: "hello", total: 5, kept: 5, truncated: false });

    const r = await app.request("/api/requests/1/replay", { method: "POST" });
    assertEquals(r.status, 200);
    const replay = await r.json();
    const sent = svc.requests[0];
    // Exact bytes: original case, order and repeats; é as the single byte it was captured as.
    const head = Array.from(sent, (b) => String.fromCharCode(b)).join("");
    assert(
      head.startsWith(
        "POST /a%20b?q=1 HTTP/1.1\r\nHost: app.test\r\nX-Thing: one\r\nx-thing: Two\r\nX-Latin: caf\xe9\r\n",
      ),
      JSON.stringify(head),
    );
    assertMatch(head, /\r\nContent-Length: 5\r\n/);
    assert(head.endsWith("\r\n\r\nhello"), JSON.stringify(head));
    assertEquals(replay.replay.status, 201);
    assertEquals(replay.replay.status_text, "Made");
    assertEquals(replay.replay.replay_of, 1);
    assertEquals(replay.replay.response.headers.filter(([k]: string[]) => k === "X-Hit"), [["X-Hit", "1"], [
      "X-Hit",
      "again",
    ]]);
    assertEquals(replay.replay.response.body.text, '{\n  "hit": 1\n}');
    assertEquals(store.list()[0].id, replay.id);

    const edited = await (await app.request("/api/requests/1/replay", {
      method: "POST",
      body: JSON.stringify({ method: "PUT", path: "/edited", headers: [["X-New", "1"]], body: "changed!" }),
    })).json();
    const second = dec.decode(svc.requests[1]);
    assertMatch(second, /^PUT \/edited HTTP\/1.1\r\n/);
    assertMatch(second, /\r\nX-New: 1\r\n/);
    assert(!/X-Thing/.test(second), "edited headers replace the captured ones");
    assert(second.endsWith("\r\n\r\nchanged!"), second);
    assertEquals(edited.replay.response.body.text, '{\n  "hit": 2\n}');

    const bad = await app.request("/api/requests/1/replay", {
      method: "POST",
      body: JSON.stringify({ path: "no slash" }),
    });
    assertEquals(bad.status, 400);
    assertMatch((await bad.json()).error.message, /path must start with \//);
    const gone = createCaptureStore();
    gone.begin(info("/x", [], "http://127.0.0.1:1/")).end({});
    const failed = await createInspectorApp(gone).app.request("http://127.0.0.1:4040/api/requests/1/replay", {
      method: "POST",
      headers: { host: "127.0.0.1:4040", "content-type": "application/json" },
    });
    assertEquals(failed.status, 502);
    gone.begin(info("/grpc", [], "h2c://127.0.0.1:50051/")).end({});
    const grpcId = gone.list()[0].id;
    const h2c = await createInspectorApp(gone).app.request(
      `http://127.0.0.1:4040/api/requests/${grpcId}/replay`,
      {
        method: "POST",
        headers: { host: "127.0.0.1:4040", "content-type": "application/json" },
      },
    );
    assertEquals(h2c.status, 502);
    assertMatch((await h2c.json()).error.message, /http and https services only; this one is h2c:/);
  } finally {
    svc.close();
  }
});

Deno.test("listener: an address in use is reported with the fix, and nothing else breaks", () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const r = startInspector(
      { hostname: "127.0.0.1", port: (taken.addr as Deno.NetAddr).port },
      createCaptureStore(),
    );
    assertEquals(typeof r, "string");
    assertMatch(String(r), /already in use.*HOP_CLIENT_INSPECT_LISTEN/);
  } finally {
    taken.close();
  }
});

Deno.test("Chromium: the page loads, an exchange fed through the hook appears within 1 s (SSE), replay shows the new response beside the old", async () => {
  const svc = rawService();
  const store = createCaptureStore();
  const running = startInspector({ hostname: "127.0.0.1", port: 0 }, store);
  if (typeof running === "string") throw new Error(running);
  const out = await Deno.makeTempDir({ prefix: "hopgate-inspect-test-" });
  const browser = await openBrowser(running.url);
  try {
    await browser.waitFor(
      `document.title === "HopGate inspector" && document.getElementById("state").textContent === "live"`,
      15_000,
      "the page to load and go live",
    );
    const fedAt = performance.now();
    const c = store.begin({
      requestId: "chromium-1",
      method: "POST",
      target: "/orders?id=42",
      headers: [["Host", "app.test"], ["Content-Type", "application/json"]],
      localUrl: svc.url,
    });
    c.requestBody(enc.encode('{"item":"tea","qty":2}'));
    c.response(200, "OK", [["Content-Type", "application/json"], ["X-Origin", "captured"]]);
    c.responseBody(enc.encode('{"ok":true}'));
    c.end({});
    await browser.waitFor(
      `[...document.querySelectorAll("#rows tr")].some((tr) => tr.textContent.includes("/orders?id=42") && tr.textContent.includes("200"))`,
      1000,
      "the row within 1 s",
    );
    console.log(`row shown ${Math.round(performance.now() - fedAt)} ms after the hook was fed`);

    await browser.evaluate(`document.querySelector('#rows tr[data-id="1"]').click()`);
    await browser.waitFor(`document.querySelector("#detail pre.json")`, 3000, "the detail pane");
    const pretty = await browser.evaluate<string>(`document.querySelector("#detail pre.json").textContent`);
    assertEquals(pretty, '{\n  "item": "tea",\n  "qty": 2\n}');

    await browser.evaluate(`document.getElementById("replay-btn").click()`);
    await browser.waitFor(
      `document.querySelector("#replay-result .replay .status")`,
      5000,
      "the replay result",
    );
    const [oldStatus, newStatus, newBody] = await browser.evaluate<string[]>(`[
      document.querySelector("#replay-result .original .status").textContent,
      document.querySelector("#replay-result .replay .status").textContent,
      document.querySelector("#replay-result .replay pre").textContent,
    ]`);
    assertEquals([oldStatus, newStatus], ["200 OK", "201 Made"]);
    assertEquals(newBody, '{\n  "hit": 1\n}');
    assertMatch(dec.decode(svc.requests[0]), /\r\n\r\n\{"item":"tea","qty":2\}$/);
    await browser.waitFor(
      `document.querySelectorAll("#rows tr").length === 2`,
      1000,
      "the replay in the list",
    );
    // An image answer is shown as an image, a gzip JSON answer decoded and pretty-printed.
    const png = Uint8Array.from(
      atob(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
      ),
      (ch) => ch.charCodeAt(0),
    );
    const img = store.begin(info("/logo.png", [["Host", "app.test"]], svc.url));
    img.response(200, "OK", [["Content-Type", "image/png"]]);
    img.responseBody(png);
    img.end({});
    const zipped = store.begin(info("/zipped", [["Host", "app.test"]], svc.url));
    zipped.response(200, "OK", [["Content-Type", "application/json"], ["Content-Encoding", "gzip"]]);
    zipped.responseBody(new Uint8Array(gzipSync(enc.encode('{"packed":true}'))));
    zipped.end({});
    await browser.waitFor(`document.querySelectorAll("#rows tr").length === 4`, 1000, "two more rows");
    const imgId = store.list()[1].id;
    await browser.evaluate(`document.querySelector('#rows tr[data-id="${imgId}"]').click()`);
    await browser.waitFor(
      `document.querySelector("#detail img.body")?.naturalWidth === 1`,
      3000,
      "the image shown",
    );
    await browser.evaluate(`document.querySelector('#rows tr[data-id="${store.list()[0].id}"]').click()`);
    await browser.waitFor(
      `document.querySelector("#detail pre.json")?.textContent === '{\\n  "packed": true\\n}'`,
      3000,
      "gzip JSON",
    );
    assert(
      await browser.evaluate<boolean>(
        `document.getElementById("detail").textContent.includes("decoded from gzip for display")`,
      ),
    );
    await browser.evaluate(`document.querySelector('#rows tr[data-id="1"]').click()`);
    await browser.waitFor(
      `document.querySelector("#detail h2")?.textContent === "POST /orders?id=42"`,
      3000,
      "back to the first exchange",
    );
    await browser.evaluate(`document.getElementById("replay-btn").click()`);
    await browser.waitFor(
      `document.querySelector("#replay-result .replay .status")`,
      5000,
      "the replay result again",
    );
    const shot = `${out}/inspector.png`;
    await browser.screenshot(shot);

    // A restarted client (a new store on the same port, ids from 1 again): the page starts over.
    await running.close();
    const store2 = createCaptureStore();
    store2.begin(info("/after-restart")).end({});
    const again = startInspector({ hostname: "127.0.0.1", port: running.port }, store2);
    if (typeof again === "string") throw new Error(again);
    try {
      const ms = await browser.waitFor(
        `document.querySelectorAll("#rows tr").length === 1 && document.querySelector("#rows tr").textContent.includes("/after-restart")`,
        5000,
        "the list of the restarted client",
      );
      console.log(`page caught up with a restarted inspector in ${Math.round(ms)} ms`);
    } finally {
      await again.close();
    }
    assert((await Deno.stat(shot)).size > 10_000, "a real screenshot");
    console.log(`screenshot: ${shot}`);
  } finally {
    await browser.close();
    await running.close();
    svc.close();
  }
});

Deno.test("API: other host names (DNS rebinding), cross-site origins and non-JSON posts are refused", async () => {
  const store = createCaptureStore();
  store.begin(info("/x")).end({});
  const { app } = createInspectorApp(store);
  const get = (host: string) => app.request("http://x/api/requests", { headers: { host } });
  assertEquals((await get("127.0.0.1:4040")).status, 200);
  assertEquals((await get("localhost:4040")).status, 200);
  assertEquals((await get("[::1]:4040")).status, 200);
  assertEquals((await get("evil.example:4040")).status, 403);
  const post = (headers: Record<string, string>) =>
    app.request("http://x/api/requests/1/replay", {
      method: "POST",
      body: "{}",
      headers: { host: "127.0.0.1:4040", ...headers },
    });
  assertEquals((await post({ "content-type": "text/plain" })).status, 415);
  assertEquals(
    (await post({ "content-type": "application/json", origin: "https://evil.example" })).status,
    403,
  );
});

Deno.test("capture store: header lines read back as given (byte strings, colons, empty values, duplicates, none)", () => {
  const store = createCaptureStore();
  const latin1 = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i).filter((c) => c !== 10));
  const request: HeaderLine[] = [
    ["Host", "app.test"],
    ["X-Time", "12:30:00"],
    ["X-Empty", ""],
    ["x-dup", "1"],
    ["X-Dup", "2"],
    ["X-Bytes", latin1],
    ["X-Big", "v".repeat(10_000)],
  ];
  const response: HeaderLine[] = [["Set-Cookie", "a=1"], ["Set-Cookie", "b=2; Path=/"]];
  const capture = store.begin(info("/h", request));
  capture.response(200, "OK", response);
  capture.end({});
  const x = store.list()[0];
  assertEquals(x.requestHeaders, request);
  assertEquals(x.responseHeaders, response);
  const none = store.begin(info("/none", []));
  none.response(204, "No Content", []);
  assertEquals([store.list()[0].requestHeaders, store.list()[0].responseHeaders], [[], []]);
});
