/**
 * Failure pages through a real tunnel: no client (502 tunnel_offline), unknown host (404), local
 * service refused (502 local_unreachable naming the cause), no response head in time (504).
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  curl,
  startTunnelClient,
  startTunnelServer,
  stopProcess,
  type TunnelClient,
  type TunnelServer,
} from "./support/tunnel_env.ts";
import { type Origin, startOrigin } from "./support/tunnel_origin.ts";
import { eventually } from "./support/wait.ts";

const JSON_ACCEPT = { accept: "application/json" };

async function errorBody(res: Response) {
  assertMatch(res.headers.get("content-type") ?? "", /application\/json/);
  const body = await res.json();
  assert(body.error, `an error object: ${JSON.stringify(body)}`);
  assertEquals(body.error.request_id, res.headers.get("x-request-id"));
  return body.error as { code: string; message: string; request_id: string };
}

Deno.test("tunnel failures: offline, unknown host, local service refused, proxy timeout", async (t) => {
  const origin: Origin = startOrigin("failures");
  const clients: TunnelClient[] = [];
  let srv: TunnelServer | undefined;
  try {
    srv = await startTunnelServer({ env: { HOP_SERVER_PROXY_TIMEOUT: "2s" } });
    const s = srv;
    const key = await s.register("app.test");
    const goneKey = await s.register("gone.test");

    await t.step("no client connected: 502 tunnel_offline, HTML by default, JSON when asked", async () => {
      const html = await s.fetch(s.url("app.test", "/page"));
      assertEquals(html.status, 502);
      assertMatch(html.headers.get("content-type") ?? "", /text\/html/);
      const page = await html.text();
      assertMatch(page, /<html/i);
      assertMatch(page, /app\.test/);
      const json = await s.fetch(s.url("app.test", "/page"), { headers: JSON_ACCEPT });
      assertEquals(json.status, 502);
      assertEquals((await errorBody(json)).code, "tunnel_offline");
      // curl over HTTP/1.1 sees the same.
      const c = await curl(s, "app.test", "/page", ["--http1.1", "-H", "accept: application/json"]);
      assertEquals([c.status, JSON.parse(c.text).error.code], [502, "tunnel_offline"]);
    });

    await t.step("unknown host: 404 unknown_host", async () => {
      // No certificate is served for an unknown name, so a verifying client stops at TLS...
      let tlsError = "";
      await s.fetch(s.url("nobody.test", "/x")).then(
        (r) => r.body?.cancel(),
        (e) => (tlsError = String(e.cause ?? e)),
      );
      assertMatch(tlsError, /certificate/i);
      // ...and one that reaches the front (SNI of the server's own name, Host of another) gets the 404 page.
      for (const proto of ["--http1.1", "--http2"]) {
        const json = await curl(s, "hop.test", "/x", [
          proto,
          "-H",
          "host: nobody.test",
          "-H",
          "accept: application/json",
        ]);
        assertEquals(json.status, 404);
        const err = JSON.parse(json.text).error;
        assertEquals(err.code, "unknown_host");
        assertMatch(err.message, /nobody\.test/);
        assertEquals(err.request_id, json.headers.get("x-request-id"));
        const html = await curl(s, "hop.test", "/x", [proto, "-H", "host: nobody.test"]);
        assertEquals(html.status, 404);
        assertMatch(html.headers.get("content-type") ?? "", /text\/html/);
        assertMatch(html.text, /nobody\.test/);
      }
    });

    clients.push(await startTunnelClient({ dtls: s.dtls, domain: "app.test", key, target: origin.target }));

    await t.step("the tunnel answers once a client is connected", async () => {
      const res = await s.fetch(s.url("app.test", "/who"));
      assertEquals([res.status, await res.text()], [200, "failures"]);
    });

    await t.step("local service refused: 502 local_unreachable naming the target and the cause", async () => {
      // A port that was just listening and is now closed: connection refused.
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const deadPort = (l.addr as Deno.NetAddr).port;
      l.close();
      clients.push(
        await startTunnelClient({
          dtls: s.dtls,
          domain: "gone.test",
          key: goneKey,
          target: `127.0.0.1:${deadPort}`,
        }),
      );
      const json = await s.fetch(s.url("gone.test", "/anything"), { headers: JSON_ACCEPT });
      assertEquals(json.status, 502);
      const err = await errorBody(json);
      assertEquals(err.code, "local_unreachable");
      assertMatch(err.message, new RegExp(`127\\.0\\.0\\.1:${deadPort}`));
      assertMatch(err.message, /refused/i);
      const html = await s.fetch(s.url("gone.test", "/anything"));
      assertEquals(html.status, 502);
      assertMatch(await html.text(), /refused/i);
      const line = await clients[1].proc.waitFor((l) =>
        l.msg === "request" && l.error === "local_unreachable"
      );
      assertEquals(line.status, 502);
    });

    await t.step("origin stopped while the tunnel stays up: 502 local_unreachable", async () => {
      const other = startOrigin("short-lived");
      const k = await s.register("stopped.test");
      clients.push(
        await startTunnelClient({ dtls: s.dtls, domain: "stopped.test", key: k, target: other.target }),
      );
      const ok = await s.fetch(s.url("stopped.test", "/who"));
      assertEquals([ok.status, await ok.text()], [200, "short-lived"]);
      await other.close();
      const res = await s.fetch(s.url("stopped.test", "/who"), { headers: JSON_ACCEPT });
      assertEquals(res.status, 502);
      const err = await errorBody(res);
      assertEquals(err.code, "local_unreachable");
      assertMatch(err.message, /refused/i);
    });

    await t.step(
      "no response head within HOP_SERVER_PROXY_TIMEOUT (2 s): 504, local request aborted",
      async () => {
        // The JSON and the HTML answer side by side: both wait out the same timeout.
        const started = performance.now();
        const [res, html] = await Promise.all([
          s.fetch(s.url("app.test", "/hang"), { headers: JSON_ACCEPT }),
          s.fetch(s.url("app.test", "/hang")),
        ]);
        const elapsed = performance.now() - started;
        assertEquals(res.status, 504);
        const err = await errorBody(res);
        assertEquals(err.code, "tunnel_timeout");
        assert(elapsed >= 1900 && elapsed < 5000, `504 after ${Math.round(elapsed)} ms, expected ≈ 2000`);
        console.log(`504 after ${Math.round(elapsed)} ms (timeout 2 s)`);
        assertEquals(html.status, 504);
        assertMatch(html.headers.get("content-type") ?? "", /text\/html/);
        await html.body?.cancel();
        // The server reset both streams: the client aborts its local fetches, the origin sees them go
        // (and the next step counts only its own).
        await eventually(() => origin.pending() === 0, "the origin's hanging requests to be aborted", 1500);
      },
    );

    await t.step("a browser that gives up: the origin's request is aborted at once", async () => {
      const ac = new AbortController();
      const pending = s.fetch(s.url("app.test", "/hang"), { signal: ac.signal }).then(
        () => "answered",
        (e) => (e as Error).name,
      );
      await eventually(() => origin.pending() === 1, "the request to reach the origin", 1500);
      const aborted = performance.now();
      ac.abort();
      assertEquals(await pending, "AbortError");
      await eventually(() => origin.pending() === 0, "the origin's request to be aborted", 1500);
      console.log(`browser abort reached the origin after ${Math.round(performance.now() - aborted)} ms`);
      const line = await clients[0].proc.waitFor((l) =>
        l.msg === "request" && l.path === "/hang" && Number(l.duration_ms) < 1900
      );
      assertEquals(line.error, "reset");
    });

    await t.step("a slow response with its head in time is not cut by the proxy timeout", async () => {
      const res = await s.fetch(s.url("app.test", "/slowbody?ms=3000"));
      assertEquals(res.status, 200);
      assertEquals(await res.text(), "first part\nsecond part\n");
    });
  } finally {
    for (const c of clients) await stopProcess(c.proc);
    await srv?.cleanup();
    await origin.close();
  }
});
