/** The HTTPS front with real clients: curl (h1, h2), node:http2, node:tls; ALPN routing, limits, web bridge. */
import http2 from "node:http2";
import tls from "node:tls";
import { Buffer } from "node:buffer";
import { assert, assertEquals } from "./support/assert.ts";
import { latin1String } from "../lib/protocol/body.ts";
import { type Front, type FrontHandler, startHttpsFront } from "../lib/proxy/front.ts";
import type { FrontLimits } from "../lib/proxy/front_limits.ts";
import { serveWeb } from "../lib/proxy/web_bridge.ts";
import {
  curl,
  parseResponses,
  readAll,
  type Seen,
  testCert,
  testHandler,
  testSni,
} from "./support/front_fixture.ts";
import { eventually, sleep } from "./support/wait.ts";

const pair = await testCert();
const sni = testSni(pair);

async function withFront(
  fn: (front: Front, seen: Seen[], tunnels: tls.TLSSocket[]) => Promise<void>,
  opts: { limits?: Partial<FrontLimits>; tunnelHook?: boolean } = {},
): Promise<void> {
  const seen: Seen[] = [];
  const tunnels: tls.TLSSocket[] = [];
  const inner = testHandler(seen);
  const handler: FrontHandler = (req, res) => {
    if (req.authority === "admin.test") {
      serveWeb(req, res, async (r) => {
        const headers = new Headers({ "content-type": "text/plain" });
        headers.append("set-cookie", "a=1");
        headers.append("set-cookie", "b=2");
        return new Response(`${r.method} ${r.url} ${await r.text()}`, { headers });
      });
      return;
    }
    return inner(req, res);
  };
  const front = await startHttpsFront({
    listen: { hostname: "127.0.0.1", port: 0 },
    handler,
    defaultCert: pair,
    // Answers in a later task, like a store that issues a certificate on first use.
    sni: () => new Promise((r) => setTimeout(() => r(sni()), 20)),
    limits: opts.limits,
    onTunnelSocket: opts.tunnelHook === false ? undefined : (s, remote) => {
      if (remote.addr !== "127.0.0.1" || !remote.port) {
        throw new Error("the tunnel hook needs the peer address");
      }
      tunnels.push(s);
      s.write("hello tunnel");
    },
  });
  try {
    await fn(front, seen, tunnels);
  } finally {
    for (const t of tunnels) t.destroy();
    front.destroyConnections();
    await front.close();
    await sleep(50);
  }
}

function h2Request(
  port: number,
  headers: http2.OutgoingHttpHeaders,
  body?: string,
  trailers?: Record<string, string>,
): Promise<
  {
    headers: http2.IncomingHttpHeaders;
    body: string;
    trailers: http2.IncomingHttpHeaders | null;
    raw: string[];
  }
> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(
      `https://localhost:${port}`,
      {
        ca: pair.cert,
        maxHeaderListPairs: 4096,
        maxHeaderListSize: 1 << 20,
      } as http2.SecureClientSessionOptions,
    );
    session.on("error", reject);
    const req = session.request(headers, { waitForTrailers: !!trailers, endStream: body === undefined });
    let got: { headers: http2.IncomingHttpHeaders; raw: string[] } | null = null;
    let t: http2.IncomingHttpHeaders | null = null;
    const parts: string[] = [];
    req.on("response", (h, _f, raw) => (got = { headers: h, raw: raw as unknown as string[] }));
    req.on("trailers", (h) => (t = h));
    req.on("data", (c) => parts.push(latin1String(c)));
    req.on("end", () => {
      session.close();
      resolve({ headers: got!.headers, raw: got!.raw, body: parts.join(""), trailers: t });
    });
    req.on("error", reject);
    if (trailers) req.on("wantTrailers", () => req.sendTrailers(trailers));
    if (body !== undefined) req.end(body);
  });
}

/** Writes raw bytes over TLS and reads until the peer closes. */
function tlsExchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      rejectUnauthorized: false,
      ALPNProtocols: ["http/1.1"],
    });
    let out = "";
    s.on("secureConnect", () => s.write(Buffer.from(bytes, "latin1")));
    s.on("data", (d: Buffer) => (out += d.toString("latin1")));
    s.on("close", () => resolve(out));
    s.on("error", reject);
  });
}

Deno.test("https h1 and h2: raw UTF-8 target byte for byte, ALPN by curl, trailers on h1", async () => {
  await withFront(async (front, seen) => {
    const raw = latin1String(new TextEncoder().encode("/a/한?q=한"));
    const out = await tlsExchange(
      front.addr.port,
      `GET ${raw} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n`,
    );
    assertEquals(parseResponses(out)[0].status, 200);
    await h2Request(front.addr.port, { ":path": raw });
    assertEquals(seen.map((s) => [s.httpVersion, s.target]), [["1.1", raw], ["2", raw]]);
    const h1 = await curl([
      "-k",
      "--http1.1",
      "-w",
      "\n%{http_version}",
      `https://localhost:${front.addr.port}/echo`,
    ]);
    const h2 = await curl([
      "-k",
      "--http2",
      "-w",
      "\n%{http_version}",
      `https://localhost:${front.addr.port}/echo`,
    ]);
    assert(h1.out.endsWith("\n1.1") && h2.out.endsWith("\n2"), h1.out + h2.out);
    const tr = await curl([
      "-k",
      "--http1.1",
      "--raw",
      "-i",
      `https://localhost:${front.addr.port}/trailers`,
    ]);
    assert(
      tr.out.includes("Transfer-Encoding: chunked\r\n") && tr.out.endsWith("0\r\nX-Checksum: abc123\r\n\r\n"),
      tr.out,
    );
  });
});

Deno.test("h2: :authority wins over host; header order and duplicates; request and response trailers", async () => {
  await withFront(async (front, seen) => {
    const r = await h2Request(
      front.addr.port,
      {
        ":method": "POST",
        ":path": "/trailers",
        ":authority": "a.test",
        "host": "b.test",
        "x-dup": ["1", "2"],
        "x-after": "3",
      },
      "body",
      { "x-req-sum": "r1" },
    );
    assertEquals(r.body, "part1-part2");
    assertEquals(r.trailers?.["x-checksum"], "abc123");
    assert(!("date" in r.headers), "no Date added");
    assertEquals(seen[0].authority, "a.test");
    assertEquals(seen[0].headers.filter(([n]) => n.startsWith("x-") || n === "host"), [
      ["host", "b.test"],
      [
        "x-dup",
        "1",
      ],
      ["x-dup", "2"],
      ["x-after", "3"],
    ]);
    assertEquals(seen[0].body, "body");
    assertEquals(seen[0].trailers, [["x-req-sum", "r1"]]);
  });
});

Deno.test("h2: 64 KB of request and response headers, 200 Set-Cookie lines, Content-Length kept", async () => {
  await withFront(async (front, seen) => {
    const big: Record<string, string> = {};
    for (let i = 0; i < 64; i++) big[`x-big-${i}`] = "v".repeat(1000);
    const r = await h2Request(front.addr.port, { ":path": "/bighead", ...big });
    assertEquals(seen[0].headers.filter(([n]) => n.startsWith("x-big-")).length, 64);
    assertEquals(Object.keys(r.headers).filter((n) => n.startsWith("x-big-")).length, 64);
    const c = await h2Request(front.addr.port, { ":path": "/cookies/200" });
    assertEquals((c.headers["set-cookie"] as string[]).length, 200);
    const l = await h2Request(front.addr.port, { ":path": "/len/10" });
    assertEquals([l.headers["content-length"], l.body], ["10", "xxxxxxxxxx"]);
    const h = await curl([
      "-k",
      "--http1.1",
      "-D",
      "-",
      "-o",
      "/dev/null",
      ...Object.entries(big).flatMap(([k, v]) => ["-H", `${k}: ${v}`]),
      `https://localhost:${front.addr.port}/cookies/200`,
    ]);
    assertEquals(h.out.split("\r\n").filter((l) => l.startsWith("Set-Cookie:")).length, 200);
  });
});

Deno.test("https: ALPN hopgate/1 goes to the tunnel hook, or is closed without one", async () => {
  const dial = (port: number) =>
    new Promise<{ alpn: string | false; data: string }>((resolve, reject) => {
      const s = tls.connect({
        host: "127.0.0.1",
        port,
        servername: "localhost",
        ca: pair.cert,
        ALPNProtocols: ["hopgate/1"],
        rejectUnauthorized: false,
      });
      let data = "";
      s.on("data", (d) => {
        data += d;
        if (data.length >= 12) {
          resolve({ alpn: s.alpnProtocol ?? false, data });
          s.destroy();
        }
      });
      s.on("close", () => resolve({ alpn: s.alpnProtocol ?? false, data }));
      s.on("error", reject);
    });
  await withFront(async (front, _seen, tunnels) => {
    assertEquals(await dial(front.addr.port), { alpn: "hopgate/1", data: "hello tunnel" });
    assertEquals(tunnels.length, 1);
  });
  await withFront(async (front) => {
    assertEquals((await dial(front.addr.port)).data, "");
  }, { tunnelHook: false });
});

Deno.test("https: a silent or trickled TLS hello is cut by the handshake timeout", async () => {
  await withFront(async (front) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: front.addr.port });
    const t0 = Date.now();
    await conn.write(new Uint8Array([0x16, 0x03, 0x01]));
    assertEquals(await readAll(conn, { timeoutMs: 3000 }), "");
    const took = Date.now() - t0;
    assert(took >= 300 && took < 1500, `closed after ${took} ms`);
    conn.close();
    await sleep(50);
    assertEquals(front.openFrom("127.0.0.1"), 0);
  }, { limits: { handshakeTimeoutMs: 400 } });
});

Deno.test("web bridge: the server's own domain on Web Request/Response, raw bytes percent-encoded", async () => {
  await withFront(async (front) => {
    const raw = latin1String(new TextEncoder().encode("/p/한?q=한"));
    const out = await tlsExchange(
      front.addr.port,
      `POST ${raw} HTTP/1.1\r\nHost: admin.test\r\nContent-Length: 3\r\nConnection: close\r\n\r\nx=1`,
    );
    const [r] = parseResponses(out);
    assertEquals(r.body, "POST https://admin.test/p/%ED%95%9C?q=%ED%95%9C x=1");
    assertEquals(r.headers.filter(([n]) => n === "set-cookie"), [["set-cookie", "a=1"], [
      "set-cookie",
      "b=2",
    ]]);
    assert(out.startsWith("HTTP/1.1 200 OK\r\n"), out);
    const h2 = await h2Request(front.addr.port, { ":path": "/x", ":authority": "admin.test" });
    assertEquals(h2.body, "GET https://admin.test/x ");
  });
});

Deno.test("h2: RST_STREAM from the browser is reported through onAbort", async () => {
  await withFront(async (front, seen) => {
    const session = http2.connect(`https://localhost:${front.addr.port}`, { rejectUnauthorized: false });
    session.on("error", () => {});
    const req = session.request({ ":path": "/hang" });
    req.on("error", () => {});
    await sleep(150);
    req.close(http2.constants.NGHTTP2_CANCEL);
    await eventually(() => seen.length > 0, "the cancel to be reported", 2000, 20).finally(() =>
      session.destroy()
    );
    assertEquals(seen.map((s) => [s.target, s.httpVersion]), [["aborted:/hang", "2"]]);
  });
});

/** JS heap plus ArrayBuffer memory of this isolate (buffered bodies would be there). */
function isolateMemory(): number {
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
}

Deno.test("https h1 and h2: 32 MiB down and up with backpressure and bounded memory", async () => {
  await withFront(async (front) => {
    // The upload's file is written before the measurement starts: only the front's memory counts.
    const file = await Deno.makeTempFile();
    await Deno.writeFile(file, new Uint8Array(32 * 1024 * 1024));
    // This isolate's heap and buffers, sampled for their peak, not the process's RSS: parallel test files
    // share the process.
    const held0 = isolateMemory();
    let peak = held0;
    const sampler = setInterval(() => peak = Math.max(peak, isolateMemory()), 20);
    try {
      for (const v of ["--http1.1", "--http2"]) {
        const down = await curl([
          "-k",
          v,
          "-o",
          "/dev/null",
          "-w",
          "%{size_download}",
          `https://localhost:${front.addr.port}/source/32`,
        ]);
        assertEquals(down.out, String(32 * 1024 * 1024), v + down.err);
        const up = await curl([
          "-k",
          v,
          "--data-binary",
          `@${file}`,
          `https://localhost:${front.addr.port}/sink`,
        ]);
        assertEquals(up.out, String(32 * 1024 * 1024), v + up.err);
      }
    } finally {
      clearInterval(sampler);
    }
    await Deno.remove(file);
    const grew = (peak - held0) / 1024 / 1024;
    assert(grew < 100, `heap and buffers grew ${grew.toFixed(0)} MiB at their peak`);
  });
});

Deno.test("h2 and https h1: idle connections are closed after the idle timeout", async () => {
  await withFront(async (front) => {
    const session = http2.connect(`https://localhost:${front.addr.port}`, { rejectUnauthorized: false });
    session.on("error", () => {});
    const closed = new Promise<number>((r) => session.on("close", () => r(Date.now())));
    const req = session.request({ ":path": "/len/1" });
    req.resume();
    await new Promise((r) => req.on("end", r));
    const t0 = Date.now();
    const h1 = await new Promise<number>((resolve) => {
      const s = tls.connect({
        host: "127.0.0.1",
        port: front.addr.port,
        rejectUnauthorized: false,
        ALPNProtocols: ["http/1.1"],
      });
      s.on("error", () => {});
      s.on("close", () => resolve(Date.now()));
    });
    const took = [(await closed) - t0, h1 - t0];
    assert(took.every((t) => t >= 300 && t < 2000), `closed after ${took} ms`);
  }, { limits: { idleTimeoutMs: 500 } });
});

Deno.test("h2: a handler that rejects gets a 500 on its stream", async () => {
  await withFront(async (front) => {
    const r = await h2Request(front.addr.port, { ":path": "/reject" });
    assertEquals(Number(r.headers[":status"]), 500);
  });
});
