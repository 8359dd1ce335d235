/**
 * Byte-faithfulness end to end: a real Node.js origin, server.ts and client.ts as processes, and the
 * same requests sent straight to the origin and through the tunnel over HTTPS — as raw HTTP/1.1 bytes
 * and over HTTP/2 (curl, node:http2). What the origin sends is what the browser gets, and the other way
 * round, but for the hop-by-hop lines and the X-Forwarded-* and X-Request-Id lines the tunnel adds.
 */
import http2 from "node:http2";
import { assert, assertEquals } from "./support/assert.ts";
import { curl, type TunnelServer, withTunnel } from "./support/tunnel_env.ts";
import { connectPlain, connectTls, rawExchange, type RawResponse } from "./support/raw_http.ts";
import { latin1Bytes } from "../lib/protocol/body.ts";

const DOMAIN = "app.test";
const ADDED = ["X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-Id"];
/** Lines a hop may legitimately change: framing and connection management, the date, the id. */
const HOP_LINES = new Set(["connection", "keep-alive", "transfer-encoding", "date", "x-request-id"]);

interface Env {
  srv: TunnelServer;
  originPort: number;
  /** Head bytes the raw recorder (the client's /raw service) received, newest last. */
  recorded: Uint8Array[];
}

/**
 * A raw TCP origin that records each request head's bytes and answers 204: Node's own HTTP parser (like
 * Deno's) refuses raw UTF-8 in a request-target, so a byte-level recorder checks what crossed.
 */
function startRecorder(): { port: number; recorded: Uint8Array[]; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const recorded: Uint8Array[] = [];
  (async () => {
    for await (const conn of listener) {
      (async () => {
        const buf = new Uint8Array(256 * 1024);
        let len = 0;
        try {
          for (;;) {
            const n = await conn.read(buf.subarray(len));
            if (n === null) break;
            len += n;
            const end = indexOfCrlf2(buf.subarray(0, len));
            if (end === -1) continue;
            recorded.push(buf.slice(0, end + 4));
            buf.copyWithin(0, end + 4, len);
            len -= end + 4;
            await conn.write(new TextEncoder().encode("HTTP/1.1 204 No Content\r\n\r\n"));
          }
        } catch { /* connection reset */ }
        try {
          conn.close();
        } catch { /* closed */ }
      })();
    }
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, recorded, close: () => listener.close() };
}

function indexOfCrlf2(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

/** Lines the hop to the origin may add or drop: connection management and framing. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding"]);

function endToEndLines(lines: [string, string][]): [string, string][] {
  return lines.filter(([n]) => !HOP_BY_HOP.has(n.toLowerCase()));
}

async function startNodeOrigin(): Promise<{ port: number; close(): Promise<void> }> {
  const child = new Deno.Command("node", {
    args: [new URL("./support/faithful_origin.cjs", import.meta.url).pathname],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/listening \d+/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the node origin exited before listening");
    text += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return {
    port: Number(/listening (\d+)/.exec(text)![1]),
    async close() {
      await child.stdin.close().catch(() => {});
      await child.status;
    },
  };
}

/** The Node origin, the raw recorder (the client's /raw service) and a tunnel to both. */
async function withFaithfulTunnel(fn: (env: Env) => Promise<void>) {
  const origin = await startNodeOrigin();
  const recorder = startRecorder();
  try {
    await withTunnel({
      domain: DOMAIN,
      target: `127.0.0.1:${origin.port}`,
      clientEnv: { HOP_CLIENT_SERVICES: `/raw=127.0.0.1:${recorder.port}` },
    }, ({ srv }) => fn({ srv, originPort: origin.port, recorded: recorder.recorded }));
  } finally {
    recorder.close();
    await origin.close();
  }
}

/** The same raw request straight to the origin and through the tunnel (TLS, HTTP/1.1). */
async function both(
  env: Env,
  request: string,
  method = "GET",
): Promise<{ direct: RawResponse; tunnel: RawResponse }> {
  const [direct] = await rawExchange(await connectPlain(env.originPort), request, method);
  const conn = await connectTls(env.srv.httpsPort, DOMAIN, env.srv.caPem);
  const [tunnel] = await rawExchange(conn, request, method);
  return { direct, tunnel };
}

function endToEnd(headers: [string, string][]): [string, string][] {
  return headers.filter(([n]) => !HOP_LINES.has(n.toLowerCase()));
}

function assertSameResponse(a: RawResponse, b: RawResponse, what: string) {
  assertEquals(b.statusLine, a.statusLine, `${what}: status line`);
  assertEquals(endToEnd(b.headers), endToEnd(a.headers), `${what}: header lines`);
  assertEquals(b.body, a.body, `${what}: body bytes`);
  assertEquals(b.trailers, a.trailers, `${what}: trailers`);
}

function req(method: string, target: string, lines: string[], body = ""): string {
  return `${method} ${target} HTTP/1.1\r\nHost: ${DOMAIN}\r\n${
    lines.map((l) => `${l}\r\n`).join("")
  }\r\n${body}`;
}

interface Echo {
  method: string;
  target: string;
  rawHeaders: string[];
  length: number;
  sha256: string;
  trailers: string[];
}

function echoOf(r: RawResponse): Echo {
  return JSON.parse(new TextDecoder().decode(r.body));
}

function pairs(raw: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

Deno.test("tunnel is byte-faithful over HTTP/1.1: bodies, compression, lengths, trailers, headers, raw targets", async (t) => {
  await withFaithfulTunnel(async (env) => {
    await t.step(
      "gzip: every Accept-Encoding against a service that always and one that negotiates",
      async () => {
        for (const path of ["/gzip-always", "/gzip-negotiate"]) {
          for (const ae of ["gzip", "identity", null, "gzip, deflate, br, zstd"]) {
            const { direct, tunnel } = await both(
              env,
              req("GET", path, ae === null ? [] : [`Accept-Encoding: ${ae}`]),
            );
            assertSameResponse(direct, tunnel, `${path} with ${ae ?? "no"} Accept-Encoding`);
          }
        }
      },
    );

    await t.step(
      "the origin sees the browser's lines (case, order, duplicates) plus X-Forwarded-* and X-Request-Id only",
      async () => {
        const lines = [
          "accept-language: ko-KR",
          "X-Dup: one",
          "x-dup: two",
          "Accept-Encoding: gzip, deflate, br, zstd",
          "Content-Type: text/plain",
          "Content-Length: 11",
        ];
        const target = "/echo?q=%ED%95%9C&x=%41";
        const { direct, tunnel } = await both(env, req("POST", target, lines, "hello world"), "POST");
        const d = echoOf(direct);
        const v = echoOf(tunnel);
        assertEquals(v.target, d.target, "target bytes");
        const seen = endToEndLines(pairs(v.rawHeaders));
        assertEquals(seen.slice(0, -4), pairs(d.rawHeaders), "browser lines in order, then the tunnel's");
        assertEquals(seen.slice(-4).map(([n]) => n), ADDED);
        assertEquals([v.length, v.sha256], [d.length, d.sha256], "body");
        assert(
          !pairs(v.rawHeaders).some(([n]) => n.toLowerCase() === "transfer-encoding"),
          "Content-Length kept, not chunked",
        );
      },
    );

    await t.step("a chunked upload keeps its trailers", async () => {
      const body = "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\nx-sum: 43\r\n\r\n";
      const lines = ["Transfer-Encoding: chunked", "Trailer: X-Sum"];
      const { direct, tunnel } = await both(env, req("PUT", "/echo", lines, body), "PUT");
      const d = echoOf(direct);
      const v = echoOf(tunnel);
      assertEquals(v.trailers, d.trailers);
      assertEquals(v.trailers, ["X-Sum", "42", "x-sum", "43"]);
      assertEquals([v.length, v.sha256], [d.length, d.sha256]);
    });

    await t.step(
      "response trailers, 200 Set-Cookie lines, 64 KB of response headers, no added Content-Type, reason phrase and case",
      async () => {
        for (const path of ["/trailers", "/cookies", "/big-headers", "/no-content-type", "/mixed-case"]) {
          const { direct, tunnel } = await both(env, req("GET", path, []));
          assertSameResponse(direct, tunnel, path);
        }
      },
    );

    await t.step("a raw UTF-8 request target crosses byte for byte", async () => {
      const target = "/raw/\xed\x95\x9c?q=\xed\x95\x9c&x=%41";
      const conn = await connectTls(env.srv.httpsPort, DOMAIN, env.srv.caPem);
      const [res] = await rawExchange(conn, req("GET", target, []));
      assertEquals(res.status, 204);
      const head = env.recorded.at(-1)!;
      assertEquals(head.subarray(0, head.indexOf(13)), latin1Bytes(`GET ${target} HTTP/1.1`));
    });

    await t.step("64 KB of request headers pass", async () => {
      const lines = Array.from({ length: 64 }, (_, i) => `X-Req-${i}: ${"r".repeat(1000)}`);
      const { direct, tunnel } = await both(env, req("GET", "/echo", lines));
      assertEquals(tunnel.status, 200);
      assertEquals(
        endToEndLines(pairs(echoOf(tunnel).rawHeaders)).slice(0, -4),
        pairs(echoOf(direct).rawHeaders),
      );
    });
  });
});

function h2Request(
  env: Env,
  headers: Record<string, string | string[]>,
  body?: Uint8Array,
  trailers?: Record<string, string>,
): Promise<
  { headers: http2.IncomingHttpHeaders; raw: string[]; body: Uint8Array; trailers: Record<string, unknown> }
> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://${DOMAIN}:${env.srv.httpsPort}`, {
      ca: env.srv.caPem,
      host: "127.0.0.1",
      servername: DOMAIN,
      maxHeaderListPairs: 4000,
      settings: { maxHeaderListSize: 1 << 20 },
    } as http2.SecureClientSessionOptions);
    session.on("error", reject);
    const stream = session.request(headers, {
      endStream: body === undefined,
      waitForTrailers: trailers !== undefined,
    });
    if (trailers) stream.on("wantTrailers", () => stream.sendTrailers(trailers));
    const parts: Uint8Array[] = [];
    let head: http2.IncomingHttpHeaders = {};
    let raw: string[] = [];
    let got: Record<string, unknown> = {};
    stream.on("response", (h, _flags, rawHeaders) => {
      head = h;
      raw = rawHeaders as unknown as string[];
    });
    stream.on("trailers", (t) => got = { ...t });
    stream.on("data", (c: Uint8Array) => parts.push(new Uint8Array(c)));
    stream.on("end", () => {
      session.close();
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      resolve({ headers: head, raw, body: out, trailers: got });
    });
    stream.on("error", reject);
    if (body !== undefined) stream.end(body);
  });
}

Deno.test("tunnel is byte-faithful over HTTP/2: compression, trailers both ways, headers, raw targets", async (t) => {
  await withFaithfulTunnel(async (env) => {
    await t.step("gzip bodies arrive as the origin sent them (curl over HTTP/2, no decoding)", async () => {
      for (const path of ["/gzip-always", "/gzip-negotiate"]) {
        for (const ae of ["gzip", "identity", "gzip, deflate, br, zstd"]) {
          const [direct] = await rawExchange(
            await connectPlain(env.originPort),
            req("GET", path, [`Accept-Encoding: ${ae}`]),
          );
          const r = await curl(env.srv, DOMAIN, path, ["--http2", "-H", `Accept-Encoding: ${ae}`]);
          assertEquals(r.status, 200);
          assertEquals(
            r.headers.get("content-encoding"),
            direct.headers.find(([n]) => n === "Content-Encoding")?.[1] ?? null,
          );
          assertEquals(r.body, direct.body, `${path} ${ae}`);
        }
      }
    });

    await t.step("request trailers reach the origin; response trailers reach the browser", async () => {
      const up = await h2Request(
        env,
        { ":method": "POST", ":path": "/echo", "content-type": "text/plain" },
        new TextEncoder().encode("with trailers"),
        { "x-sum": "99" },
      );
      const echo = JSON.parse(new TextDecoder().decode(up.body)) as Echo;
      assertEquals(echo.trailers, ["x-sum", "99"]);
      const down = await h2Request(env, { ":method": "GET", ":path": "/trailers" });
      assertEquals(new TextDecoder().decode(down.body), "part one, part two");
      assertEquals(down.trailers["x-checksum"], "abc123");
      assertEquals(down.trailers["x-done"], "yes");
    });

    await t.step(
      "200 Set-Cookie lines and 64 KB of headers each way; the raw UTF-8 path as bytes",
      async () => {
        const cookies = await h2Request(env, { ":method": "GET", ":path": "/cookies" });
        assertEquals((cookies.headers["set-cookie"] as string[]).length, 200);
        const big = await h2Request(env, { ":method": "GET", ":path": "/big-headers" });
        assertEquals(String(big.headers["x-big-63"]).length, 1000);
        const many: Record<string, string> = {};
        for (let i = 0; i < 64; i++) many[`x-req-${i}`] = "r".repeat(1000);
        const echo = await h2Request(env, { ":method": "GET", ":path": "/echo?big=1", ...many });
        const seen = endToEndLines(
          pairs((JSON.parse(new TextDecoder().decode(echo.body)) as Echo).rawHeaders),
        );
        assertEquals(seen.filter(([n]) => n.startsWith("x-req-")).length, 64);
        assertEquals(seen.slice(-4).map(([n]) => n), ADDED);
      },
    );
  });
});
