/**
 * The lean HTTP/1.1 path's own parts: the request head codec (fuzzed against llhttp's request
 * parser) and the connection pool's edges (idle connections the service closed, bytes past an
 * answer, close-delimited bodies, a body on a stale connection never re-sent).
 */
import { createRequire } from "node:module";
import { closeLocalConnections } from "../lib/proxy/local_http.ts";
import { encodeRequestHead, lastChunk } from "../lib/proxy/local_h1_wire.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { bytes, chunkSource, latin1, rawOrigin, request } from "./support/local_http.ts";
import { sleep } from "./support/wait.ts";

interface RequestParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Uint8Array): number | Error;
  [key: number]: unknown;
}
const { HTTPParser } = createRequire(import.meta.url)("_http_common") as {
  HTTPParser: { new (): RequestParser; REQUEST: number; kOnHeadersComplete: number };
};

/** A seeded generator (xorshift32), so a failing case can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

Deno.test("request heads: valid byte strings round-trip through llhttp as given; any invalid char is refused", () => {
  const rnd = random(0x5eed);
  const pick = (s: string) => s[Math.floor(rnd() * s.length)];
  const token = () => Array.from({ length: 1 + Math.floor(rnd() * 12) }, () => pick(TCHARS)).join("");
  const value = () =>
    Array.from({ length: Math.floor(rnd() * 20) }, () => {
      const c = rnd() < 0.8 ? 0x21 + Math.floor(rnd() * 94) : 0x80 + Math.floor(rnd() * 128);
      return String.fromCharCode(c);
    }).join("").trim();
  for (let round = 0; round < 300; round++) {
    const flat: string[] = [];
    for (let i = Math.floor(rnd() * 8); i > 0; i--) flat.push(token(), value());
    // llhttp's strict request parser takes an ASCII target; raw high bytes are checked byte for byte.
    const target = "/" +
      Array.from({ length: Math.floor(rnd() * 30) }, () => String.fromCharCode(0x21 + Math.floor(rnd() * 94)))
        .join("");
    const head = encodeRequestHead("GET", target, flat);
    const raw = target + String.fromCharCode(0x80 + Math.floor(rnd() * 128));
    let lines = "";
    for (let i = 0; i < flat.length; i += 2) lines += `${flat[i]}: ${flat[i + 1]}\r\n`;
    assertEquals(
      latin1(encodeRequestHead("PATCH", raw, flat)),
      `PATCH ${raw} HTTP/1.1\r\n${lines}Connection: keep-alive\r\n\r\n`,
    );
    let seen: { url: string; raw: string[] } | null = null;
    const p = new HTTPParser();
    p.initialize(HTTPParser.REQUEST, {}, 64 * 1024, 0);
    p[HTTPParser.kOnHeadersComplete] = (_a: number, _b: number, raw: string[], _m: number, url: string) => {
      seen = { url, raw };
      return 0;
    };
    const ret = p.execute(head);
    assert(!(ret instanceof Error), `round ${round}: llhttp refused ${JSON.stringify(latin1(head))}`);
    assertEquals(seen, { url: target, raw: [...flat, "Connection", "keep-alive"] }, `round ${round}`);

    // One bad character anywhere makes the whole head refused.
    let bad = String.fromCharCode([0, 10, 13, 0x7f, 0x100][Math.floor(rnd() * 5)]);
    const where = Math.floor(rnd() * 3);
    // node lets DEL through in a target (INVALID_PATH_REGEX is /[^\u0021-\u00ff]/), not a space.
    if (where === 2 && bad === "\x7f") bad = " ";
    const spoiled = flat.length > 0 ? [...flat] : ["X", "y"];
    if (where === 0) spoiled[0] += bad;
    if (where === 1) spoiled[1] += bad;
    let threw = false;
    try {
      encodeRequestHead("GET", where === 2 ? target + bad : target, spoiled);
    } catch (e) {
      threw = e instanceof TypeError;
    }
    assert(threw, `round ${round}: ${JSON.stringify(bad)} at ${where} must be refused`);
  }
  assertEquals(latin1(lastChunk([["X-T", "1"]])), "0\r\nX-T: 1\r\n\r\n");
  assertEquals(latin1(lastChunk(null)), "0\r\n\r\n");
});

Deno.test("a Connection line given is kept, and no keep-alive is added next to it", () => {
  assertEquals(
    latin1(encodeRequestHead("GET", "/", ["CONNECTION", "close"])),
    "GET / HTTP/1.1\r\nCONNECTION: close\r\n\r\n",
  );
});

Deno.test("an idle connection the service closed leaves the pool: the next request dials afresh, sent once", async () => {
  const origin = await rawOrigin((_req, socket) => {
    setTimeout(() => socket.end(), 20);
    return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  });
  try {
    await request(origin.url, { target: "/1" });
    await sleep(100);
    const res = await request(origin.url, { target: "/2" });
    assertEquals([res.status, origin.connections, origin.requests.length], [200, 2, 2]);
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("bytes past a complete answer make the connection unusable: it is closed, not reused", async () => {
  const origin = await rawOrigin(() => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokJUNK");
  try {
    const first = await request(origin.url, { target: "/1" });
    const second = await request(origin.url, { target: "/2" });
    assertEquals([latin1(first.body), latin1(second.body), origin.connections], ["ok", "ok", 2]);
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("a close-delimited body ends cleanly at the service's close, and the connection is not kept", async () => {
  const origin = await rawOrigin((_req, socket) => {
    socket.end(bytes("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"));
    return null;
  });
  try {
    const res = await request(origin.url, { target: "/" });
    assertEquals([res.status, latin1(res.body), res.trailers], [200, "until the end", null]);
    const again = await request(origin.url, { target: "/" });
    assertEquals([latin1(again.body), origin.connections], ["until the end", 2]);
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("a request with a body that finds its reused connection reset fails instead of being re-sent", async () => {
  let n = 0;
  const origin = await rawOrigin((_req, socket) => {
    if (++n === 2) {
      socket.resetAndDestroy();
      return null;
    }
    return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  });
  try {
    await request(origin.url, { target: "/1" });
    const e = await request(origin.url, { method: "POST", target: "/2", body: chunkSource([bytes("x")]) })
      .then(() => null, (e) => e);
    assertEquals(e?.code, "local_error");
    assertEquals(origin.requests.length, 2, "the body was sent once, never replayed");
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("connecting to a service whose accept queue is full is local_unreachable after the connect timeout", async () => {
  // A listener with backlog 0 that never accepts: one connection fills its queue, the next one's SYN is dropped.
  const child = new Deno.Command("python3", {
    args: [
      "-c",
      "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(30)",
    ],
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const port = Number((await reader.read()).value!.trim());
  reader.releaseLock();
  const filler = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const started = performance.now();
    const e = await request(new URL(`http://127.0.0.1:${port}`), { target: "/" }, { connectTimeoutMs: 300 })
      .then(() => null, (e) => e);
    assertEquals(e?.code, "local_unreachable", e?.message);
    assert(/ETIMEDOUT/.test(e.message), e.message);
    assert(performance.now() - started < 3_000, "the timeout decided, not the kernel's SYN retries");
  } finally {
    filler.close();
    child.kill();
    await child.status;
    await child.stdout.cancel().catch(() => {});
    closeLocalConnections();
  }
});

Deno.test("past 256 connections to one origin, requests wait for a free one: all are answered", async () => {
  const origin = await rawOrigin((_req, socket) => {
    setTimeout(() => socket.write(bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")), 50);
    return null;
  });
  try {
    const answers = await Promise.all(
      Array.from({ length: 300 }, (_, i) => request(origin.url, { target: `/${i}` })),
    );
    assertEquals(answers.filter((a) => latin1(a.body) === "ok").length, 300);
    assertEquals(origin.connections, 256, "the cap held, and every connection was used");
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});
