/**
 * End to end through a real tunnel: server.ts and client.ts as processes, a local origin, and real
 * HTTP clients (Deno's fetch through the resolver proxy, curl, ws) verifying the self-signed chain. 100 MB
 * each way: tunnel_bulk.test.ts.
 */
import WebSocket from "ws";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  curl,
  startTunnelClient,
  startTunnelServer,
  stopProcess,
  type TunnelServer,
} from "./support/tunnel_env.ts";
import { type Origin, seededStream, startOrigin } from "./support/tunnel_origin.ts";

const DOMAIN = "app.test";

interface Env {
  srv: TunnelServer;
  origin: Origin;
  client: Awaited<ReturnType<typeof startTunnelClient>>;
}

async function withTunnel(fn: (env: Env) => Promise<void>, serverEnv: Record<string, string> = {}) {
  const origin = startOrigin("main");
  let srv: TunnelServer | undefined;
  let client: Env["client"] | undefined;
  try {
    const t0 = performance.now();
    srv = await startTunnelServer({ env: serverEnv });
    const t1 = performance.now();
    const key = await srv.register(DOMAIN);
    const t2 = performance.now();
    client = await startTunnelClient({ dtls: srv.dtls, domain: DOMAIN, key, target: origin.target });
    console.log(
      `start: server ${Math.round(t1 - t0)} ms (its own startup_ms ${
        srv.proc.lines.find((l) => l.msg === "server ready")?.startup_ms
      }), register ${Math.round(t2 - t1)} ms, client ${Math.round(performance.now() - t2)} ms`,
    );
    await fn({ srv, origin, client });
  } finally {
    const t0 = performance.now();
    if (client) await stopProcess(client.proc);
    const t1 = performance.now();
    if (srv) await srv.cleanup();
    const t2 = performance.now();
    await origin.close();
    console.log(`cleanup: client ${Math.round(t1 - t0)} ms, server ${Math.round(t2 - t1)} ms`);
  }
}

// deno-lint-ignore no-explicit-any
const lookup: any = (
  _host: string,
  opts: { all?: boolean } | undefined,
  cb: (...args: unknown[]) => void,
) => opts?.all ? cb(null, [{ address: "127.0.0.1", family: 4 }]) : cb(null, "127.0.0.1", 4);

Deno.test("tunnel: methods, headers, request ids, cookies, bodiless answers, SSE, WebSocket, concurrency", async (t) => {
  await withTunnel(async ({ srv, origin, client }) => {
    await t.step("GET, POST, PUT, DELETE reach the origin with their bodies", async () => {
      for (const method of ["GET", "POST", "PUT", "DELETE"]) {
        const body = method === "POST" || method === "PUT" ? `payload of ${method}` : undefined;
        const res = await srv.fetch(srv.url(DOMAIN, "/method?x=1"), { method, body });
        assertEquals(res.status, 200, method);
        assertEquals(await res.json(), { method, body: body ?? "", query: "?x=1" });
      }
    });

    await t.step(
      "X-Forwarded-* (a forged one replaced) and X-Request-Id reach the origin; the same id is logged at both ends",
      async () => {
        for (const http2 of [false, true]) {
          const res = await srv.fetch(srv.url(DOMAIN, "/headers"), {
            headers: { "x-forwarded-for": "203.0.113.7", "x-custom": "kept" },
            http2,
          });
          assertEquals(res.status, 200);
          const seen = await res.json();
          const id = res.headers.get("x-request-id");
          assert(id && /^[0-9a-f-]{36}$/.test(id), `x-request-id in the response: ${id}`);
          assertEquals(seen["x-request-id"], id);
          // The browser's own X-Forwarded-For is not believed: the peer is no trusted proxy.
          assertEquals(seen["x-forwarded-for"], "127.0.0.1");
          assertEquals(seen["x-forwarded-proto"], "https");
          assertEquals(seen["x-custom"], "kept");
          // Over HTTP/2 the host comes from :authority (there is no Host header): the port stays.
          assertEquals(
            seen["x-forwarded-host"],
            `${DOMAIN}:${srv.httpsPort}`,
            `x-forwarded-host, h2 ${http2}`,
          );
          assertEquals(seen["host"], `${DOMAIN}:${srv.httpsPort}`, `host, h2 ${http2}`);
          const serverLine = await srv.proc.waitFor((l) => l.msg === "request" && l.request_id === id, 5000);
          assertEquals(serverLine.status, 200);
          assertEquals(serverLine.domain, DOMAIN);
          const clientLine = await client.proc.waitFor(
            (l) => l.msg === "request" && l.request_id === id,
            5000,
          );
          assertEquals(clientLine.status, 200);
          assertEquals(clientLine.path, "/headers");
        }
      },
    );

    await t.step("repeated Set-Cookie survive (HTTP/2 and HTTP/1.1)", async () => {
      for (const args of [["--http2"], ["--http1.1"]]) {
        const r = await curl(srv, DOMAIN, "/cookies", args);
        assertEquals(r.status, 200);
        const cookies = r.headers.getSetCookie();
        assertEquals(cookies, ["a=1; Path=/", "b=2; Path=/; HttpOnly", "c=3, with comma; Path=/"], args[0]);
      }
      const res = await srv.fetch(srv.url(DOMAIN, "/cookies"));
      assertEquals(res.headers.getSetCookie().length, 3);
      await res.body?.cancel();
    });

    await t.step("HEAD, 204 and 304 carry no body", async () => {
      for (const args of [["--http2"], ["--http1.1"]]) {
        const head = await curl(srv, DOMAIN, "/etag", [...args, "-I"]);
        assertEquals(head.status, 200);
        assertEquals(head.headers.get("etag"), '"v1"');
        const nc = await curl(srv, DOMAIN, "/nocontent", args);
        assertEquals(nc.status, 204);
        assertEquals(nc.body.byteLength, 0);
        assertEquals(nc.headers.get("x-kind"), "nocontent");
        assertEquals(nc.code, 0, "curl saw a clean 204");
        const nm = await curl(srv, DOMAIN, "/etag", [...args, "-H", 'if-none-match: "v1"']);
        assertEquals(nm.status, 304);
        assertEquals(nm.body.byteLength, 0);
        assertEquals(nm.code, 0, "curl saw a clean 304");
      }
      const head = await srv.fetch(srv.url(DOMAIN, "/etag"), { method: "HEAD" });
      assertEquals(head.status, 200);
      assertEquals((await head.arrayBuffer()).byteLength, 0);
    });

    await t.step("HTTP/2 and HTTP/1.1 are both served, as negotiated", async () => {
      const h2 = await curl(srv, DOMAIN, "/who", ["--http2"]);
      assertEquals([h2.status, h2.httpVersion, h2.text], [200, "2", "main"]);
      const h1 = await curl(srv, DOMAIN, "/who", ["--http1.1"]);
      assertEquals([h1.status, h1.httpVersion, h1.text], [200, "1.1", "main"]);
    });

    await t.step("SSE arrives event by event (the first before the origin writes the second)", async () => {
      const before = origin.sseSent.length;
      const res = await srv.fetch(srv.url(DOMAIN, "/sse?n=3"));
      assertEquals(res.status, 200);
      assertMatch(res.headers.get("content-type") ?? "", /text\/event-stream/);
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      const nextEvent = async (i: number) => {
        while (!text.includes(`data: event ${i}\n\n`)) {
          const timer = setTimeout(() => reader.cancel(new Error(`event ${i} not delivered`)), 5000);
          const { done, value } = await reader.read();
          clearTimeout(timer);
          if (done) throw new Error(`stream ended before event ${i}: ${text}`);
          text += value;
        }
      };
      await nextEvent(1);
      // The origin has written only event 1: it waits for us before the next.
      assertEquals(origin.sseSent.length, before + 1);
      origin.sseNext();
      await nextEvent(2);
      assertEquals(origin.sseSent.length, before + 2);
      origin.sseNext();
      await nextEvent(3);
      const { done } = await reader.read();
      assert(done, "the stream ends after the last event");
    });

    await t.step("WebSocket: 1 000 echoes (text and binary) and a close code passing through", async () => {
      const ws = new WebSocket(`wss://${DOMAIN}:${srv.httpsPort}/ws`, { ca: srv.caPem, lookup });
      ws.binaryType = "nodebuffer";
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
      });
      const queue: { data: Uint8Array | string; binary: boolean }[] = [];
      let wake: (() => void) | undefined;
      ws.on("message", (data: Uint8Array, isBinary: boolean) => {
        queue.push({ data: isBinary ? new Uint8Array(data) : data.toString(), binary: isBinary });
        wake?.();
      });
      const next = async () => {
        while (queue.length === 0) {
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error("no echo within 5 s")), 5000);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
        return queue.shift()!;
      };
      const started = performance.now();
      for (let i = 0; i < 1000; i++) {
        if (i % 2 === 0) {
          const msg = `message ${i} ${"x".repeat(i % 97)}`;
          ws.send(msg);
          const got = await next();
          assertEquals(got.binary, false);
          assertEquals(got.data, msg);
        } else {
          const msg = new Uint8Array(1 + (i % 300)).map((_, j) => (i + j) & 0xff);
          ws.send(msg);
          const got = await next();
          assertEquals(got.binary, true);
          assertEquals(got.data, msg);
        }
      }
      const rttMs = (performance.now() - started) / 1000;
      console.log(`websocket: 1000 sequential echoes, mean round trip ${rttMs.toFixed(2)} ms`);
      const closed = new Promise<{ code: number; reason: string }>((resolve) =>
        ws.once("close", (code: number, reason: Uint8Array) => resolve({ code, reason: reason.toString() }))
      );
      ws.send("close:4001:bye from origin");
      assertEquals(await closed, { code: 4001, reason: "bye from origin" });
    });

    await t.step(
      "200 concurrent requests all answered correctly over HTTP/2 (one connection, fetch)",
      async () => {
        const started = performance.now();
        const results = await Promise.all(
          Array.from({ length: 200 }, async (_, i) => {
            const res = await srv.fetch(srv.url(DOMAIN, `/method?i=${i}`), {
              method: "POST",
              body: `body ${i}`,
              http2: true,
            });
            return { status: res.status, body: await res.json() };
          }),
        );
        for (const [i, r] of results.entries()) {
          assertEquals(r.status, 200);
          assertEquals(r.body, { method: "POST", body: `body ${i}`, query: `?i=${i}` });
        }
        console.log(`200 concurrent POSTs over HTTP/2: ${Math.round(performance.now() - started)} ms`);
      },
    );

    await t.step(
      "200 concurrent requests all answered correctly over HTTP/1.1 (200 connections, curl)",
      async () => {
        // curl rather than fetch: 200 HTTP/1.1 connections from Deno's fetch leave the test process's
        // blocking pool stalled (the next file system call waits ≈ 25 s), which would slow the suite.
        const dir = await Deno.makeTempDir({ prefix: "hopgate-tunnel-curl-" });
        try {
          const args = ["-sS", "--parallel", "--parallel-immediate", "--parallel-max", "200"];
          for (let i = 0; i < 200; i++) {
            if (i > 0) args.push("--next");
            args.push(
              "--http1.1",
              "--cacert",
              srv.caFile,
              "--resolve",
              `${DOMAIN}:${srv.httpsPort}:127.0.0.1`,
              "-d",
              `body ${i}`,
              "-o",
              `${dir}/${i}.json`,
              "-w",
              `${i} %{http_code} %{http_version}\\n`,
              srv.url(DOMAIN, `/method?i=${i}`),
            );
          }
          const started = performance.now();
          const out = await new Deno.Command("curl", { args, stdout: "piped", stderr: "piped" }).output();
          const ms = Math.round(performance.now() - started);
          assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
          const lines = new TextDecoder().decode(out.stdout).trim().split("\n").sort();
          assertEquals(lines.length, 200);
          for (const line of lines) {
            const [i, code, version] = line.split(" ");
            assertEquals([code, version], ["200", "1.1"], `request ${i}`);
            const body = JSON.parse(await Deno.readTextFile(`${dir}/${i}.json`));
            assertEquals(body, { method: "POST", body: `body ${i}`, query: `?i=${i}` });
          }
          console.log(`200 concurrent POSTs over HTTP/1.1: ${ms} ms`);
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      },
    );

    await t.step("an echoed streaming body comes back whole", async () => {
      const size = 3 * 1024 * 1024 + 17;
      const res = await srv.fetch(srv.url(DOMAIN, "/echo"), {
        method: "POST",
        body: seededStream(size, 7),
      });
      assertEquals(res.status, 200);
      const got = new Uint8Array(await res.arrayBuffer());
      const want = new Uint8Array(await new Response(seededStream(size, 7)).arrayBuffer());
      assertEquals(got.byteLength, size);
      assert(got.every((b, i) => b === want[i]), "echoed bytes are identical");
    });
  });
});
