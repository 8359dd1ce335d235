/**
 * Forwarding between servers on one PostgreSQL: a client that reaches only server 1 is served through
 * server 2 too (server 2 holds no session, finds server 1's in the sessions table and forwards the raw
 * request with an authenticated marker) rather than answering 502. The marker's codec alone: a tampered,
 * stale or self-made marker is refused.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { startTunnelClient, stopProcess } from "./support/tunnel_env.ts";
import { startOrigin } from "./support/tunnel_origin.ts";
import { startPostgres } from "../scripts/postgres.ts";
import {
  hostRequest,
  SECRET_KEY,
  SERVER_DOMAIN,
  startTestServer,
  type TestServer,
} from "./support/server.ts";
import { peerAuth } from "../lib/proxy/peer_forward.ts";
import { eventually } from "./support/wait.ts";
import { makeScratchDir, scratchRoot } from "./support/scratch.ts";

/** GET, or POST of a JSON body, with the given Host. */
const get = (port: number, host: string, path: string, body?: string) =>
  hostRequest(port, host, path, body ? { method: "POST", body } : {});

const portOf = (s: TestServer) => Number(String(s.ready.http).split(":").pop());

Deno.test("cluster: a server without the domain's session forwards to the one that has it", async () => {
  const pg = await startPostgres({ parent: scratchRoot() });
  const origin = startOrigin("forwarded");
  const servers: TestServer[] = [];
  const dirs: string[] = [];
  let client: Awaited<ReturnType<typeof startTunnelClient>> | undefined;
  try {
    for (let i = 0; i < 2; i++) {
      const dataDir = await makeScratchDir("hopgate-forward-");
      dirs.push(dataDir);
      servers.push(await startTestServer({ dataDir, dsn: pg.dsn, env: { HOP_LOG_LEVEL: "info" } }));
    }
    const [one, two] = servers;
    const reg = await get(
      portOf(one),
      SERVER_DOMAIN,
      "/api/v1/admin/domains",
      JSON.stringify({ domain: "app.test" }),
    );
    assertEquals(reg.status, 201, reg.text);
    const key = JSON.parse(reg.text).client_api_key;
    client = await startTunnelClient({
      dtls: String(one.ready.dtls),
      domain: "app.test",
      key,
      target: origin.target,
    });
    assertEquals((await get(portOf(one), "app.test", "/who")).text, "forwarded");
    // Server 2 learns of the session through the sessions table (mirrored within about 200 ms).
    let through: { status: number; text: string; headers: Record<string, unknown> } | undefined;
    await eventually(
      async () => {
        through = await get(portOf(two), "app.test", "/headers");
        return through.status === 200;
      },
      "server 2 to forward the request",
      5000,
    );
    const seen = JSON.parse(through!.text) as Record<string, string>;
    assertEquals(seen["x-hopgate-peer"], undefined, "the marker never reaches the origin");
    assertEquals(seen["x-forwarded-for"], "127.0.0.1, 127.0.0.1", "the browser, then the forwarding server");
    assert(typeof through!.headers["x-request-id"] === "string");
    const posted = await get(portOf(two), "app.test", "/echo", JSON.stringify({ body: "crosses twice" }));
    assertEquals([posted.status, posted.text], [200, JSON.stringify({ body: "crosses twice" })]);
    assertEquals(
      two.proc.lines.filter((l) => l.msg === "request" && l.path === "/headers").at(-1)?.status,
      200,
    );
  } finally {
    if (client) await stopProcess(client.proc);
    for (const s of servers) await s.stop().catch(() => {});
    await origin.close();
    await pg.stop();
    for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
});

Deno.test("peer markers: only a fresh marker from another server for this very request is accepted", () => {
  const secret = new TextEncoder().encode(SECRET_KEY.slice(0, 32));
  const a = peerAuth(secret, "server-a");
  const b = peerAuth(secret, "server-b");
  const now = 1_800_000_000_000;
  const m = a.sign("app.test", "GET", "/x?y=1", now);
  assert(b.verify(m, "app.test", "GET", "/x?y=1", now + 1000));
  assert(!a.verify(m, "app.test", "GET", "/x?y=1", now), "its own marker");
  assert(!b.verify(m, "app.test", "GET", "/x?y=2", now), "another target");
  assert(!b.verify(m, "other.test", "GET", "/x?y=1", now), "another domain");
  assert(!b.verify(m, "app.test", "POST", "/x?y=1", now), "another method");
  assert(!b.verify(m, "app.test", "GET", "/x?y=1", now + 60_000), "stale");
  assert(
    !b.verify(m.replace(/.$/, (c) => c === "0" ? "1" : "0"), "app.test", "GET", "/x?y=1", now),
    "tampered",
  );
  const other = peerAuth(new TextEncoder().encode("another secret entirely"), "server-b");
  assert(!other.verify(m, "app.test", "GET", "/x?y=1", now), "another cluster's key");
  assert(!b.verify("v1;x;1;zz", "app.test", "GET", "/x", now), "malformed");
});
