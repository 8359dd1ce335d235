/**
 * Lifecycle of real tunnels: graceful server shutdown and restart, key rotation and domain removal.
 * Two clients sharing a domain and one of them killed: tunnel_shared_domain.test.ts.
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
import type { LogLine } from "./support/process.ts";
import { restartablePorts } from "./support/ports.ts";
import { startOrigin } from "./support/tunnel_origin.ts";
import { eventually, sleep } from "./support/wait.ts";

const at = (line: LogLine) => Date.parse(String(line.time));

Deno.test("tunnel: SIGTERM lets an in-flight request finish and tells the client; a restart on the same ports is rejoined within 5 s", async (t) => {
  const origin = startOrigin("restart");
  let srv: TunnelServer | undefined;
  let client: TunnelClient | undefined;
  try {
    // Restarted below on the same ports: chosen outside the ephemeral range (see restartablePorts).
    srv = await startTunnelServer({ ports: restartablePorts() });
    const first = srv;
    const key = await first.register("app.test");
    client = await startTunnelClient({ dtls: first.dtls, domain: "app.test", key, target: origin.target });
    const c = client;

    await t.step(
      "SIGTERM: the 1.5 s request in flight completes with 200, the client hears why",
      async () => {
        const inFlight = first.fetch(first.url("app.test", "/slow?ms=1500")).then(async (r) => ({
          status: r.status,
          body: await r.text(),
        }));
        await eventually(() => origin.pending() === 1, "the slow request to reach the origin");
        const signalled = performance.now();
        first.proc.child.kill("SIGTERM");
        const answer = await inFlight;
        assertEquals(answer, { status: 200, body: "slow 1500" });
        const status = await first.proc.status;
        assertEquals(status.code, 0, `server exit code; stderr: ${first.proc.stderr()}`);
        console.log(`server stopped ${Math.round(performance.now() - signalled)} ms after SIGTERM`);
        const line = await c.proc.waitFor((l) => l.msg === "the server is closing the tunnel", 5000);
        assertEquals(line.reason, "the server is shutting down");
        assert(first.proc.lines.some((l) => l.msg === "server stopped"), "the server logged its stop");
      },
    );

    await t.step("restart with the same data dir and ports: the client is back within 5 s", async () => {
      await first.cleanup({ keepData: true });
      const ports = { http: first.httpPort, https: first.httpsPort, dtls: Number(first.dtls.split(":")[1]) };
      srv = await startTunnelServer({ dataDir: first.dataDir, ports, ownDataDir: true });
      const second = srv;
      assertEquals(second.httpsPort, first.httpsPort);
      assertEquals(second.caPem, first.caPem, "the local CA survives the restart");
      const ready = second.proc.lines.find((l) => l.msg === "server ready")!;
      const up = await c.waitUp(2, 15_000);
      const reconnectMs = at(up) - at(ready);
      console.log(`client back ${reconnectMs} ms after the restarted server was ready`);
      assert(reconnectMs <= 5000, `reconnected ${reconnectMs} ms after ready, expected ≤ 5000`);
      const res = await second.fetch(second.url("app.test", "/who"));
      assertEquals([res.status, await res.text()], [200, "restart"]);
      assertEquals(c.proc.child.pid > 0 && c.ups().length, 2);
    });
  } finally {
    if (client) await stopProcess(client.proc);
    await srv?.cleanup();
    await origin.close();
  }
});

Deno.test("tunnel: a rotated key closes the old client (exit 1, rejected key); deleting a domain closes its sessions", async (t) => {
  const origin = startOrigin("keys");
  const clients: TunnelClient[] = [];
  let srv: TunnelServer | undefined;
  try {
    srv = await startTunnelServer();
    const s = srv;
    const rotKey = await s.register("rot.test");
    const delKey = await s.register("del.test");
    const old = await startTunnelClient({
      dtls: s.dtls,
      domain: "rot.test",
      key: rotKey,
      target: origin.target,
    });
    const del = await startTunnelClient({
      dtls: s.dtls,
      domain: "del.test",
      key: delKey,
      target: origin.target,
    });
    clients.push(old, del);
    assertEquals((await s.fetch(s.url("rot.test", "/who"))).status, 200);

    await t.step(
      "rotate-key: the old client's tunnel closes, it exits 1 saying the key was rejected",
      async () => {
        const res = await s.admin("/domains/rot.test/rotate-key", { method: "POST" });
        assertEquals(res.status, 200);
        const newKey = (await res.json()).client_api_key as string;
        assertMatch(newKey, /^[0-9a-f]{64}$/);
        assert(newKey !== rotKey, "a new key");
        await s.proc.waitFor((l) => l.msg === "tunnel session closed" && l.domain === "rot.test", 10_000);
        const status = await Promise.race([old.proc.status, sleep(15_000).then(() => null)]);
        assert(status, `the old client did not exit; stderr: ${old.proc.stderr()}`);
        assertEquals(status.code, 1);
        assertMatch(old.proc.stderr(), /rejected the key/);
        const goodbye = old.proc.lines.find((l) => l.msg === "the server is closing the tunnel");
        assertEquals(goodbye?.reason, "the client key was rotated");
        // The new key works.
        const fresh = await startTunnelClient({
          dtls: s.dtls,
          domain: "rot.test",
          key: newKey,
          target: origin.target,
        });
        clients.push(fresh);
        const ok = await s.fetch(s.url("rot.test", "/who"));
        assertEquals([ok.status, await ok.text()], [200, "keys"]);
        const info = await (await s.admin("/domains/rot.test")).json();
        assertEquals(info.sessions.length, 1);
      },
    );

    await t.step(
      "deleting the domain closes its session; the client exits 1; the host is unknown",
      async () => {
        const sessions = (await (await s.admin("/domains/del.test")).json()).sessions;
        assertEquals(sessions.length, 1);
        const res = await s.admin("/domains/del.test", { method: "DELETE" });
        assertEquals(res.status, 204);
        await s.proc.waitFor((l) => l.msg === "tunnel session closed" && l.domain === "del.test", 10_000);
        const goodbye = await del.proc.waitFor((l) => l.msg === "the server is closing the tunnel", 5000);
        assertEquals(goodbye.reason, "the domain was removed on the server");
        const status = await Promise.race([del.proc.status, sleep(15_000).then(() => null)]);
        assert(status, `the client of a deleted domain did not exit; stderr: ${del.proc.stderr()}`);
        assertEquals(status.code, 1);
        assertMatch(del.proc.stderr(), /rejected the key/);
        const page = await curl(s, "hop.test", "/who", [
          "-H",
          "host: del.test",
          "-H",
          "accept: application/json",
        ]);
        assertEquals([page.status, JSON.parse(page.text).error.code], [404, "unknown_host"]);
      },
    );
  } finally {
    for (const c of clients) await stopProcess(c.proc);
    await srv?.cleanup();
    await origin.close();
  }
});
