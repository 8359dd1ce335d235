/** Prometheus metrics on their own listener, never on the public port. */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { startTestServer } from "./support/server.ts";
import { makeScratchDir } from "./support/scratch.ts";

Deno.test("metrics: requests are counted by domain and status class on the private listener only", async () => {
  const dataDir = await makeScratchDir("hopgate-metrics-");
  const server = await startTestServer({ dataDir });
  try {
    const metricsUrl = `http://${server.ready.metrics}/metrics`;
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${server.httpUrl}/x`, { headers: { host: "nobody.example.com" } });
      await res.body?.cancel();
    }
    // Deno's fetch replaces Host, so send the unknown host through a raw request.
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: Number(String(server.ready.http).split(":")[1]),
    });
    await conn.write(
      new TextEncoder().encode("GET /x HTTP/1.1\r\nHost: nobody.example.com\r\nConnection: close\r\n\r\n"),
    );
    const raw = new TextDecoder().decode(await new Response(conn.readable).arrayBuffer());
    assertMatch(raw, /^HTTP\/1\.1 404/);
    const text = await (await fetch(metricsUrl)).text();
    assertMatch(text, /hopgate_requests_total\{domain="nobody\.example\.com",status_class="4xx"\} 1\b/);
    assertMatch(
      text,
      /hopgate_request_duration_seconds_bucket\{le="\+Inf",domain="nobody\.example\.com"\} 1\b/,
    );
    assertMatch(text, /hopgate_process_memory_bytes\{kind="rss"\} \d+/);
    assertMatch(text, /# TYPE hopgate_dtls_handshakes_total counter/);
    const pub = await fetch(`${server.httpUrl}/metrics`);
    assertEquals(pub.status, 404);
    assert(!(await pub.text()).includes("hopgate_requests_total"));
  } finally {
    await server.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});
