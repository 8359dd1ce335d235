/** The plain HTTP/1.1 front against raw sockets and node:http: exact bytes, framing, limits. */
import http from "node:http";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { latin1String } from "../lib/protocol/body.ts";
import { createLogger } from "../lib/log/logger.ts";
import { type Front, startHttpFront } from "../lib/proxy/front.ts";
import type { FrontLimits } from "../lib/proxy/front_limits.ts";
import {
  curl,
  parseResponses,
  rawExchange,
  readAll,
  type Seen,
  testHandler,
} from "./support/front_fixture.ts";
import { eventually, sleep } from "./support/wait.ts";

async function withFront(
  fn: (front: Front, seen: Seen[], logs: string[]) => Promise<void>,
  limits: Partial<FrontLimits> = {},
): Promise<void> {
  const seen: Seen[] = [];
  const logs: string[] = [];
  const logger = createLogger({ level: "debug", write: (l) => logs.push(l) });
  const front = await startHttpFront({
    listen: { hostname: "127.0.0.1", port: 0 },
    handler: testHandler(seen),
    limits,
    logger,
  });
  try {
    await fn(front, seen, logs);
  } finally {
    front.destroyConnections();
    await front.close();
    await sleep(50);
  }
}

const done = (n: number, bodyless: boolean[] = []) => (s: string) => {
  try {
    return parseResponses(s, bodyless).filter((r) => r.status >= 200).length >= n;
  } catch {
    return false;
  }
};

Deno.test("h1: raw UTF-8 target byte for byte; header order, case and duplicates kept", async () => {
  await withFront(async (front, seen) => {
    const target = latin1String(new TextEncoder().encode("/a/한?q=한"));
    const out = await rawExchange(
      front.addr.port,
      `GET ${target} HTTP/1.1\r\nHost: a.test\r\nX-One: 1\r\nx-one: 2\r\nCoOkIe: a=b\r\nConnection: close\r\n\r\n`,
    );
    assertEquals(parseResponses(out)[0].status, 200);
    assertEquals(seen[0].target, target);
    assertEquals(seen[0].authority, "a.test");
    assertEquals(seen[0].headers, [["Host", "a.test"], ["X-One", "1"], ["x-one", "2"], ["CoOkIe", "a=b"], [
      "Connection",
      "close",
    ]]);
    assertEquals(seen[0].httpVersion, "1.1");
    assertEquals(seen[0].remoteAddr, "127.0.0.1");
  });
});

Deno.test("h1: pipelined requests answered in order, bodies framed, unread body skipped", async () => {
  await withFront(async (front, seen) => {
    const reqs = "GET /len/3 HTTP/1.1\r\nHost: a\r\n\r\n" +
      "POST /no-read HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789" +
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
      "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n" +
      "GET /len/0 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    const out = await rawExchange(front.addr.port, reqs);
    const rs = parseResponses(out);
    assertEquals(rs.map((r) => r.status), [200, 200, 200, 200, 200]);
    assertEquals(rs[0].body, "xxx");
    assertEquals(rs[1].body, "ok");
    assertEquals(JSON.parse(rs[2].body).body, "hello");
    assertEquals(JSON.parse(rs[3].body).body, "abc");
    assertEquals(JSON.parse(rs[3].body).trailers, [["X-T", "1"]]);
    assertEquals(seen.length, 4);
  });
});

Deno.test("h1: Content-Length kept; chunked with trailers when the origin declares them; 200 Set-Cookie", async () => {
  await withFront(async (front) => {
    const out = await rawExchange(
      front.addr.port,
      "GET /len/10 HTTP/1.1\r\nHost: a\r\n\r\nGET /trailers HTTP/1.1\r\nHost: a\r\n\r\nGET /cookies/200 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    const [len, tr, cookies] = parseResponses(out);
    assertEquals(len.headers, [["Content-Length", "10"], ["X-Kind", "len"]]);
    assertEquals(tr.headers, [["Content-Type", "text/plain"], ["Trailer", "X-Checksum"], [
      "Transfer-Encoding",
      "chunked",
    ]]);
    assertEquals(tr.body, "part1-part2");
    assertEquals(tr.trailers, [["X-Checksum", "abc123"]]);
    assertEquals(cookies.headers.filter(([n]) => n === "Set-Cookie").length, 200);
  });
});

Deno.test("h1: 64 KB of request headers pass; a head over 128 KiB is a 431", async () => {
  await withFront(async (front, seen) => {
    const big = Array.from({ length: 64 }, (_, i) => `X-H${i}: ${"v".repeat(1000)}\r\n`).join("");
    const ok = await rawExchange(
      front.addr.port,
      `GET /echo HTTP/1.1\r\nHost: a\r\n${big}Connection: close\r\n\r\n`,
    );
    assertEquals(parseResponses(ok)[0].status, 200);
    assertEquals(seen[0].headers.length, 66);
    const huge = `GET /echo HTTP/1.1\r\nHost: a\r\nX: ${"v".repeat(140 * 1024)}\r\n\r\n`;
    assertMatch(await rawExchange(front.addr.port, huge), /^HTTP\/1\.1 431 /);
  });
});

Deno.test("h1: request trailers from node:http arrive at the handler", async () => {
  await withFront(async (front, seen) => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({
        host: "127.0.0.1",
        port: front.addr.port,
        method: "POST",
        path: "/echo",
        headers: { "Transfer-Encoding": "chunked", Trailer: "X-Digest" },
      }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", reject);
      req.write("abc");
      req.addTrailers({ "X-Digest": "d1" });
      req.end();
    });
    assertEquals(status, 200);
    assertEquals(seen[0].body, "abc");
    assertEquals(seen[0].trailers, [["X-Digest", "d1"]]);
  });
});

Deno.test("h1: HTTP/1.0 gets a close-delimited body, never chunked", async () => {
  await withFront(async (front) => {
    const out = await rawExchange(front.addr.port, "GET /stream/5 HTTP/1.0\r\n\r\n");
    assertEquals(out, "HTTP/1.1 200 OK\r\nX-Kind: stream\r\nConnection: close\r\n\r\nyyyyy");
    const ka = await rawExchange(front.addr.port, "GET /len/2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", {
      until: done(1),
    });
    assertEquals(
      ka,
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Kind: len\r\nConnection: keep-alive\r\n\r\nxx",
    );
  });
});

Deno.test("h1: HEAD, 204 and 304 carry no body; the connection stays in step", async () => {
  await withFront(async (front) => {
    const out = await rawExchange(
      front.addr.port,
      "HEAD /len/5 HTTP/1.1\r\nHost: a\r\n\r\nGET /status/204 HTTP/1.1\r\nHost: a\r\n\r\nGET /status/304 HTTP/1.1\r\nHost: a\r\n\r\nGET /len/1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert(!out.includes("body-that-must-not-appear"), out);
    const rs = parseResponses(out, [true]);
    assertEquals(rs.map((r) => r.status), [200, 204, 304, 200]);
    assertEquals(rs[0].headers, [["Content-Length", "5"], ["X-Kind", "len"]]);
    assertEquals(rs[3].body, "x");
  });
});

Deno.test("h1: 100 Continue only once the body is read; none when answered without reading", async () => {
  await withFront(async (front, seen) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: front.addr.port });
    await conn.write(new TextEncoder().encode(
      "PUT /late HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    ));
    assertEquals(await readAll(conn, { timeoutMs: 250 }), "", "no 100 before the handler reads");
    assertEquals(
      await readAll(conn, { timeoutMs: 1000, until: (s) => s.includes("\r\n\r\n") }),
      "HTTP/1.1 100 Continue\r\n\r\n",
    );
    await conn.write(new TextEncoder().encode("data"));
    const rest = await readAll(conn, { until: done(1) });
    assertEquals(JSON.parse(parseResponses(rest)[0].body).body, "data");
    conn.close();
    const refused = await rawExchange(
      front.addr.port,
      "PUT /continue HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    );
    assertEquals(refused, "HTTP/1.1 417 Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assertEquals(seen.length, 1);
  });
});

Deno.test("h1: upgrade hands over the raw connection after 101, buffered bytes first", async () => {
  await withFront(async (front) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: front.addr.port });
    await conn.write(new TextEncoder().encode(
      "GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly",
    ));
    const head = await readAll(conn, { until: (s) => s.includes("EARLY") });
    assertEquals(
      head,
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nEARLY",
    );
    await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
    assertEquals(await readAll(conn, { until: (s) => s.length >= 18 }), "GET / HTTP/1.1\r\n\r\n");
    conn.close();
  });
});

Deno.test("h1: a refused upgrade stays HTTP: the next request on the connection is parsed and routed", async () => {
  await withFront(async (front, seen) => {
    const out = await rawExchange(
      front.addr.port,
      "GET /echo HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" +
        "GET /second HTTP/1.1\r\nHost: b.test\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n",
    );
    const rs = parseResponses(out);
    assertEquals(rs.map((r) => r.status), [200, 200]);
    assertEquals(seen.map((s) => [s.target, s.authority]), [["/echo", "a.test"], ["/second", "b.test"]]);
  });
});

Deno.test("h1: smuggling forms are answered 400/501 and the connection closed, handler never called", async () => {
  await withFront(async (front, seen) => {
    const forms = [
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: a\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n",
      "POST /echo HTTP/1.1\nHost: a\r\n\r\n",
    ];
    for (const f of forms) {
      const out = await rawExchange(front.addr.port, f);
      assertMatch(
        out,
        /^HTTP\/1\.1 (400|501) [^\r]+\r\nContent-Length: 0\r\nConnection: close\r\n\r\n$/,
        JSON.stringify(f),
      );
    }
    assertEquals(seen.length, 0);
    // A broken chunk size inside the body: the body errors and the connection closes.
    const out = await rawExchange(
      front.addr.port,
      "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert(!out.includes("200 OK"), out);
    assert(!seen.some((s) => s.target === "/smuggled"));
  });
});

Deno.test("h1: trickled head cut by the head timeout; idle keep-alive and bare connections closed", async () => {
  await withFront(async (front) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: front.addr.port });
    const t0 = Date.now();
    const trickle = (async () => {
      for (const c of "GET / HTTP/1.1\r\nHost: a\r\nX: ") {
        await sleep(40);
        try {
          await conn.write(new TextEncoder().encode(c));
        } catch {
          return;
        }
      }
    })();
    const out = await readAll(conn, { timeoutMs: 3000 });
    assertMatch(out, /^HTTP\/1\.1 408 /);
    assert(Date.now() - t0 < 1500, `cut after ${Date.now() - t0} ms`);
    conn.close();
    await trickle;
    const idle = await Deno.connect({ hostname: "127.0.0.1", port: front.addr.port });
    await idle.write(new TextEncoder().encode("GET /len/1 HTTP/1.1\r\nHost: a\r\n\r\n"));
    const t1 = Date.now();
    const rest = await readAll(idle, { timeoutMs: 3000 });
    assertEquals(parseResponses(rest)[0].body, "x");
    assert(Date.now() - t1 < 1500 && Date.now() - t1 >= 400, `idle closed after ${Date.now() - t1} ms`);
    idle.close();
    const bare = await Deno.connect({ hostname: "127.0.0.1", port: front.addr.port });
    const t2 = Date.now();
    assertEquals(await readAll(bare, { timeoutMs: 3000 }), "");
    assert(Date.now() - t2 < 1500, `bare connection closed after ${Date.now() - t2} ms`);
    bare.close();
  }, { headTimeoutMs: 600, idleTimeoutMs: 500 });
});

Deno.test("h1: per-address connection cap sheds with a warn line, and frees slots on close", async () => {
  await withFront(async (front, _seen, logs) => {
    const conns = await Promise.all(
      Array.from({ length: 4 }, () => Deno.connect({ hostname: "127.0.0.1", port: front.addr.port })),
    );
    await sleep(100);
    assertEquals(front.openFrom("127.0.0.1"), 4);
    const extra = await Deno.connect({ hostname: "127.0.0.1", port: front.addr.port });
    assertEquals(await readAll(extra, { timeoutMs: 1000 }), "", "shed at once");
    extra.close();
    assert(
      logs.some((l) => l.includes('"level":"warn"') && l.includes("per-address connection cap")),
      logs.join("\n"),
    );
    conns[0].close();
    await sleep(100);
    assertEquals(front.openFrom("127.0.0.1"), 3);
    const out = await rawExchange(
      front.addr.port,
      "GET /len/1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assertEquals(parseResponses(out)[0].body, "x");
    for (const c of conns.slice(1)) c.close();
  }, { maxConnectionsPerAddress: 4 });
});

Deno.test("h1: the browser leaving before the response is reported through onAbort", async () => {
  await withFront(async (front, seen) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: front.addr.port });
    await conn.write(new TextEncoder().encode("GET /hang HTTP/1.1\r\nHost: a\r\n\r\n"));
    await sleep(100);
    conn.close();
    await eventually(() => seen.length > 0, "the abort to be reported", 2000, 20);
    assertEquals(seen.map((s) => s.target), ["aborted:/hang"]);
  });
});

Deno.test("h1: close() stops accepting and closes idle keep-alive connections", async () => {
  const front = await startHttpFront({ listen: { hostname: "127.0.0.1", port: 0 }, handler: testHandler() });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: front.addr.port });
  await conn.write(new TextEncoder().encode("GET /len/1 HTTP/1.1\r\nHost: a\r\n\r\n"));
  assertEquals(parseResponses(await readAll(conn, { until: done(1) }))[0].body, "x");
  await front.close();
  assertEquals(await readAll(conn, { timeoutMs: 2000 }), "", "closed without more bytes");
  conn.close();
  let refused = false;
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port: front.addr.port })).close();
  } catch {
    refused = true;
  }
  assert(refused, "the listener is closed");
});

Deno.test("h1: 32 MiB down and up with backpressure", async () => {
  await withFront(async (front) => {
    const down = await curl([
      "-o",
      "/dev/null",
      "-w",
      "%{size_download}",
      `http://127.0.0.1:${front.addr.port}/source/32`,
    ]);
    assertEquals(down.out, String(32 * 1024 * 1024), down.err);
    const file = await Deno.makeTempFile();
    await Deno.writeFile(file, new Uint8Array(32 * 1024 * 1024));
    const up = await curl([
      "--data-binary",
      `@${file}`,
      "-H",
      "Expect:",
      `http://127.0.0.1:${front.addr.port}/sink`,
    ]);
    await Deno.remove(file);
    assertEquals(up.out, String(32 * 1024 * 1024), up.err);
  });
});

Deno.test("h1: a handler that rejects gets a 500, the process lives on", async () => {
  await withFront(async (front) => {
    const out = await rawExchange(front.addr.port, "GET /reject HTTP/1.1\r\nHost: a\r\n\r\n");
    assertMatch(out, /^HTTP\/1\.1 500 /);
  });
});
