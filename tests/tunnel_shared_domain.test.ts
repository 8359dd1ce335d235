/**
 * Two real tunnel clients sharing a domain: the load is spread over both, one SIGKILLed mid-request
 * leaves the other to serve everything, one leaving gracefully under load costs no request.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  startTunnelClient,
  startTunnelServer,
  stopProcess,
  type TunnelClient,
  type TunnelServer,
} from "./support/tunnel_env.ts";
import { startOrigin } from "./support/tunnel_origin.ts";
import { eventually, sleep } from "./support/wait.ts";

Deno.test("tunnel: two clients share a domain; one SIGKILLed mid-request, the other takes over", async (t) => {
  const originA = startOrigin("A");
  const originB = startOrigin("B");
  const originS = startOrigin("solo");
  const originC = startOrigin("C");
  const clients: TunnelClient[] = [];
  let srv: TunnelServer | undefined;
  try {
    srv = await startTunnelServer();
    const s = srv;
    const key = await s.register("app.test");
    const soloKey = await s.register("solo.test");
    const a = await startTunnelClient({ dtls: s.dtls, domain: "app.test", key, target: originA.target });
    const b = await startTunnelClient({ dtls: s.dtls, domain: "app.test", key, target: originB.target });
    const solo = await startTunnelClient({
      dtls: s.dtls,
      domain: "solo.test",
      key: soloKey,
      target: originS.target,
    });
    clients.push(a, b, solo);

    await t.step("both clients serve requests", async () => {
      const tags = await Promise.all(
        Array.from({ length: 40 }, async () => (await (await s.fetch(s.url("app.test", "/who"))).text())),
      );
      const count = (tag: string) => tags.filter((x) => x === tag).length;
      assertEquals(count("A") + count("B"), 40);
      assert(count("A") >= 10 && count("B") >= 10, `load shared: A ${count("A")}, B ${count("B")}`);
      const sessions = (await (await s.admin("/domains/app.test")).json()).sessions as {
        requests_served: number;
      }[];
      assertEquals(sessions.length, 2);
      assert(sessions.every((x) => x.requests_served > 0), JSON.stringify(sessions));
      // The answers can arrive before the clients' log lines are read from their pipes.
      await eventually(
        () => a.requests().length > 0 && b.requests().length > 0,
        "each client to log the requests it served",
        5000,
      );
    });

    await t.step("SIGKILL one client with requests in flight: nothing fails afterwards", async () => {
      // One slow request on each client of app.test (round robin), one on the solo client.
      const slow = (host: string) =>
        s.fetch(s.url(host, "/slow?ms=1500"), { headers: { accept: "application/json" } }).then(
          async (r) => ({ status: r.status, body: await r.text(), at: performance.now() }),
          (e) => ({ status: 0, body: String(e), at: performance.now() }),
        );
      const slowApp = [slow("app.test"), slow("app.test")];
      const slowSolo = slow("solo.test");
      // And one whose head arrived and whose body is still coming.
      const bodyRes = await s.fetch(s.url("solo.test", "/slowbody?ms=20000"));
      assertEquals(bodyRes.status, 200);
      const brokenBody = bodyRes.text().then(
        (text) => ({ ok: true, text, at: performance.now() }),
        (e) => ({ ok: false, text: String(e), at: performance.now() }),
      );
      await eventually(
        () => originA.pending() === 1 && originB.pending() === 1 && originS.pending() === 2,
        "a slow request on each origin",
      );
      const killedAt = performance.now();
      b.proc.child.kill("SIGKILL");
      solo.proc.child.kill("SIGKILL");

      // Keep four browsers busy until the dead session is gone and some while more.
      const results: { status: number; tag: string; start: number; ms: number }[] = [];
      let stop = false;
      const worker = async () => {
        while (!stop) {
          const start = performance.now();
          try {
            const r = await s.fetch(s.url("app.test", "/who"));
            results.push({ status: r.status, tag: await r.text(), start, ms: performance.now() - start });
          } catch (e) {
            results.push({ status: 0, tag: String(e), start, ms: performance.now() - start });
          }
          await sleep(50);
        }
      };
      const workers = Array.from({ length: 4 }, worker);
      await s.proc.waitFor((l) => l.msg === "tunnel session closed" && l.domain === "app.test", 40_000);
      const detectedMs = performance.now() - killedAt;
      // Enough requests after the dead session went to show that A alone serves them.
      await eventually(
        () => results.filter((r) => r.start > killedAt + detectedMs).length >= 40,
        "40 requests answered after the dead session closed",
      );
      stop = true;
      await Promise.all(workers);

      const failed = results.filter((r) => r.status !== 200);
      const stalled = results.filter((r) => r.ms > 1000);
      const lastStallEnd = Math.max(0, ...stalled.map((r) => r.start + r.ms - killedAt));
      const maxMs = Math.max(...results.map((r) => r.ms));
      console.log(
        `killed client: dead session closed after ${
          Math.round(detectedMs)
        } ms; ${results.length} requests, ` +
          `${failed.length} failed, ${stalled.length} took > 1 s (longest ${Math.round(maxMs)} ms), ` +
          `requests affected until ${Math.round(lastStallEnd)} ms after the kill`,
      );
      assertEquals(failed, [], "no request failed after the kill");
      assert(results.filter((r) => r.start > killedAt + detectedMs).every((r) => r.tag === "A"), "A alone");
      // The dead session is found by the server's liveness probe (PING unanswered for 4 s while
      // requests wait), not the transport's 30 s idle timeout: no request waits much longer.
      const closed = s.proc.lines.find((l) => l.msg === "tunnel session closed" && l.domain === "app.test");
      assertMatch(String(closed?.reason), /liveness probe/);
      assert(detectedMs < 8000, `dead session closed after ${Math.round(detectedMs)} ms`);
      assert(maxMs < 8000, `longest request ${Math.round(maxMs)} ms`);

      const [r1, r2] = await Promise.all(slowApp);
      assertEquals([r1.status, r1.body, r2.status, r2.body], [200, "slow 1500", 200, "slow 1500"]);
      const soloAnswer = await slowSolo;
      const soloMs = soloAnswer.at - killedAt;
      console.log(`killed sole client: browser answered ${soloAnswer.status} after ${Math.round(soloMs)} ms`);
      assertEquals(soloAnswer.status, 502);
      assertMatch(JSON.parse(soloAnswer.body).error.code, /^tunnel_(dropped|offline)$/);
      assert(soloMs < 8000, `502 after ${Math.round(soloMs)} ms, proxy timeout 60 s`);

      const broken = await brokenBody;
      const brokenMs = broken.at - killedAt;
      console.log(`killed sole client: body in flight broken after ${Math.round(brokenMs)} ms`);
      assertEquals(broken.ok, false, `the body must not end cleanly: ${broken.text}`);
      assert(brokenMs < 8000, `body broken after ${Math.round(brokenMs)} ms`);

      const sessions = (await (await s.admin("/domains/app.test")).json()).sessions;
      assertEquals(sessions.length, 1);
    });

    await t.step("a client that leaves gracefully (SIGTERM) under load costs no request", async () => {
      const c = await startTunnelClient({ dtls: s.dtls, domain: "app.test", key, target: originC.target });
      clients.push(c);
      await eventually(
        async () => (await (await s.fetch(s.url("app.test", "/who"))).text()) === "C",
        "C serving",
      );
      const results: { status: number; ms: number }[] = [];
      let stop = false;
      const worker = async () => {
        while (!stop) {
          const start = performance.now();
          try {
            const r = await s.fetch(s.url("app.test", "/slow?ms=100"));
            await r.body?.cancel();
            results.push({ status: r.status, ms: performance.now() - start });
          } catch {
            results.push({ status: 0, ms: performance.now() - start });
          }
        }
      };
      const workers = Array.from({ length: 4 }, worker);
      await eventually(() => (originC.hits.get("/slow") ?? 0) >= 4, "C to carry some of the load");
      const status = await c.stop();
      // The load goes on after the client left: on A alone, nothing may fail.
      const left = results.length;
      await eventually(() => results.length >= left + 20, "20 requests answered after C left");
      stop = true;
      await Promise.all(workers);
      const failed = results.filter((r) => r.status !== 200);
      const maxMs = Math.max(...results.map((r) => r.ms));
      console.log(
        `graceful leave: ${results.length} requests, ${failed.length} failed, longest ${
          Math.round(maxMs)
        } ms`,
      );
      assertEquals(status.code, 0, `client exit; stderr: ${c.proc.stderr()}`);
      assertEquals(failed.length, 0, JSON.stringify(failed));
      // The client exits at once, with requests unanswered and without a CONNECTION_CLOSE the
      // server sees (reported); the server aborts a departed session's leftovers after 5 s.
      assert(maxMs < 8000, `longest request ${Math.round(maxMs)} ms`);
      assert(originC.hits.get("/slow")! > 0, "C served some of the load before leaving");
    });
  } finally {
    for (const c of clients) await stopProcess(c.proc, 2000);
    await srv?.cleanup();
    await Promise.all([originA.close(), originB.close(), originS.close(), originC.close()]);
  }
});
