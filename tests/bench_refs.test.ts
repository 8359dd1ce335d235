import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import type { CpuUse } from "../scripts/bench/cpu.ts";
import { processTree, procStat } from "../scripts/bench/cpu.ts";
import type { SmallResult, TransferResult } from "../scripts/bench/measure.ts";
import { buildReport } from "../scripts/bench/report.ts";
import type { Results } from "../scripts/bench/results.ts";
import { sshUnavailable, startSshTunnel, stopSshTunnel } from "../scripts/bench/ssh_tunnel.ts";
import { run } from "../scripts/bench/proc.ts";
import { forward } from "../scripts/bench/deno_proxy.ts";

const small = (rps: number, p99Ms: number): SmallResult => ({
  rps,
  p50Ms: 1,
  p99Ms,
  requests: rps * 3,
  seconds: 3,
  errors: { connect: 0, read: 0, write: 0, timeout: 0 },
  non2xx: 0,
});
const transfer = (mbPerS: number): TransferResult => ({
  mbPerS,
  bytes: 20e6,
  seconds: 20 / mbPerS,
  httpCode: 200,
  httpVersion: "1.1",
  curlExit: 0,
  complete: true,
});
const cpu = (usPerRequest: number): CpuUse => ({ processes: {}, cpuSeconds: 1, usPerRequest });

function results(): Results {
  return {
    timestamp: "2026-12-01T00:00:00Z",
    config: {
      mode: "quick",
      loadSeconds: 3,
      connections: 32,
      wrkThreads: 2,
      transferBytes: 20e6,
      sessions: 0,
      lossRates: [],
    },
    env: { cpus: 2 },
    small: { direct: small(30000, 5), hopHttp: small(6000, 12) },
    transfer: { direct: { download: transfer(600) }, hopHttp: { download: transfer(120) } },
    ws: {},
    memory: {},
    lossy: { skipped: "test", rows: [] },
    problems: [],
    logs: {},
    refs: {
      denoProxy: { small: small(10000, 8), download: transfer(500) },
      sshR: { small: small(8000, 40), download: transfer(200) },
    },
    cpu: {
      direct: { origin: cpu(17) },
      hopHttp: { server: cpu(150), client: cpu(100), origin: cpu(20) },
      denoProxy: { proxy: cpu(80), origin: cpu(20) },
      sshR: { sshd: cpu(15), ssh: cpu(17), origin: cpu(20) },
    },
  };
}

Deno.test("the reference section gives HopGate ÷ Deno proxy and ÷ ssh -R, and judges the issue's targets", () => {
  const r = results();
  const report = buildReport(r);
  assertEquals(r.ratios!["ref.hopHttp_vs_denoProxy.rps"], 0.6);
  assertEquals(r.ratios!["ref.hopHttp_vs_sshR.rps"], 0.75);
  assertEquals(r.ratios!["ref.hopHttp_vs_sshR.download"], 0.6);
  assertEquals(r.ratios!["ref.hopHttp_vs_denoProxy.cpu"], 250 / 80);
  const met = (prefix: string) => r.targets!.find((t) => t.target.startsWith(prefix))?.met;
  assertEquals(met("HopGate HTTP ≥ 0.55× the one-hop Deno proxy"), true);
  assertEquals(met("HopGate HTTP p99 ≤ 10 ms"), false);
  assertEquals(met("HopGate HTTP big download ≥ 100 MB/s"), true);
  assertMatch(report, /HopGate HTTP ÷ Deno proxy: 0\.60× req\/s \[≥ 0\.55×: met\]/);
  assertMatch(report, /one-hop Deno proxy\s+10,000 .* proxy 80 .* 80\s+20\n/);
  assertMatch(report, /ssh -R \(OpenSSH\)\s+8,000 .* sshd 15\s+ssh 17\s+32\s+20\n/);
  assertMatch(report, /HopGate HTTP \(TLS off\)\s+6,000 .* server 150\s+client 100\s+250\s+20\n/);
});

Deno.test("without HopGate's figures (--only=refs) the targets are n/a, not missed", () => {
  const r = results();
  delete r.small.hopHttp;
  delete r.transfer.hopHttp;
  r.only = "refs";
  const report = buildReport(r);
  assert(r.targets!.filter((t) => t.target.includes("HopGate HTTP")).every((t) => t.met === null));
  assertMatch(report, /HopGate HTTP \(TLS off\)\s+not run \(--only=refs\)/);
});

Deno.test({
  name: "ssh -R through a private sshd reaches the origin, and stopping it leaves none of its processes",
  ignore: (await sshUnavailable()) !== null,
  async fn() {
    const origin = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response("origin says hi"),
    );
    const dir = await Deno.makeTempDir({ prefix: "bench-ssh-test-" });
    try {
      const t = await startSshTunnel({ dir, logDir: dir, originPort: origin.addr.port });
      const pids = [...t.sshdPids, t.client.pid];
      let body = "";
      try {
        assert(t.sshdPids.length >= 2, `sshd and its connection's process, got ${t.sshdPids}`);
        body = (await run(["curl", "-sS", "--max-time", "5", `http://127.0.0.1:${t.port}/small`])).stdout;
      } finally {
        await stopSshTunnel(t);
      }
      assertEquals(body, "origin says hi");
      // A zombie has ended; reaping it is its (new) parent's business.
      const running = pids.filter((p) => (procStat(p)?.state ?? "Z") !== "Z");
      assertEquals(running, [], "processes left after stopSshTunnel");
      assertEquals(processTree(t.sshd.pid), [t.sshd.pid]);
    } finally {
      await origin.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("the Deno proxy passes method, path, body and a redirect through unchanged", async () => {
  const origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    if (url.pathname === "/moved") {
      return new Response(null, { status: 302, headers: { location: "/elsewhere" } });
    }
    return new Response(`${req.method} ${url.pathname}${url.search} ${(await req.arrayBuffer()).byteLength}`);
  });
  const originUrl = new URL(`http://127.0.0.1:${origin.addr.port}`);
  const proxy = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => forward(originUrl, req),
  );
  try {
    const base = `http://127.0.0.1:${proxy.addr.port}`;
    const put = await fetch(`${base}/upload?x=1`, { method: "PUT", body: new Uint8Array(300_000) });
    assertEquals(await put.text(), "PUT /upload?x=1 300000");
    const moved = await fetch(`${base}/moved`, { redirect: "manual" });
    await moved.body?.cancel();
    assertEquals(moved.status, 302);
    assertEquals(moved.headers.get("location"), "/elsewhere");
  } finally {
    await proxy.shutdown();
    await origin.shutdown();
  }
});
