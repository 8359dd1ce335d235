/**
 * Idle tunnel clients per server (issue 13): one server on a private PostgreSQL, up to 10 000 idle
 * clients, each with its own domain and its own 127.x.y.z source address, opened in steps by driver
 * processes (scripts/bench/idle_clients.ts: the client's own DTLS, transport and forwarder code).
 * At 0 and at each step, after a full GC of the server (through its V8 inspector): the server's RSS,
 * V8 heap and external memory → per-session cost; the handshakes per second of the step; requests
 * through the server to random domains that are up (latency p50/p99). Stops by itself.
 *   deno run -A scripts/bench/scale.ts [--counts 1000,5000,10000] [--drivers 2] [--concurrency 32]
 *     [--keepalive-ms 10000]  (the simulated clients' keep-alive; the real client's is 1500)
 *     [--client-pmtu on|off]  (off: the simulated clients do not probe the packet size)
 *     [--snapshots DIR]       (a server heap snapshot at each step, for scripts/bench/heap_diff.ts)
 *     [--profiles DIR]        (a 5 s CPU profile of the idle server at each step, for profile_summary.ts)
 *
 * Measured 2026-12-01 on the shared 2-core machine (10 s keep-alive): up to ~8 000 sessions stay up
 * (7 890: RSS 40.7 kB and heap 27 kB per session, 125 handshakes/s, p50 3 ms); at 9 600–10 000 they
 * open (9 965 in 50 s: 57.7 kB RSS, 24.9 kB heap per session) but the server's one UDP socket
 * overflows (its 208 KB receive buffer full, hundreds of thousands of drops in /proc/net/udp) and
 * most sessions then die of idle timeout. The clients' 16 KB packet-size probes are a large part of
 * it (--client-pmtu off: 9 317 up, 66 dropped). With the real 1.5 s keep-alive, idle sessions cost
 * the server ~10% of a core per 1 000.
 */
import http from "node:http";
import { startPostgres } from "../postgres.ts";
import { openDatabase } from "../../db/open.ts";
import { createKeySealer } from "../../db/key_seal.ts";
import { domains as domainsTable } from "../../db/schema.ts";
import { newClientApiKey } from "../../db/domains.ts";
import { connectInspector, type MemoryUsage } from "./inspector.ts";
import { rssKb } from "./idle_clients.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
/** HOP_SECRET_KEY of the bench servers (the keys registerDomains seals open with it). */
export const SECRET_HEX = "5e".repeat(32);

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && Deno.args[i + 1] ? Deno.args[i + 1] : fallback;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** JSON lines of a process's stdout, each to `onLine`. */
export function follow(
  stream: ReadableStream<Uint8Array>,
  onLine: (o: Record<string, unknown>) => void,
): void {
  (async () => {
    let buffered = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          onLine(JSON.parse(line));
        } catch { /* not JSON */ }
      }
    }
  })().catch(() => {});
}

export function waitFor<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const end = Date.now() + timeoutMs;
    const tick = () => {
      const v = check();
      if (v !== undefined) resolve(v);
      else if (Date.now() > end) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 100);
    };
    tick();
  });
}

/** Registers `n` domains c0…c(n-1).scale.test straight through the db layer (sealed keys, as the admin API stores them). */
export async function registerDomains(dsn: string, n: number, keysFile: string): Promise<void> {
  const database = await openDatabase({ dsn, dataDir: "/nonexistent" });
  const secret = Uint8Array.from(SECRET_HEX.match(/../g)!, (h) => parseInt(h, 16));
  const sealer = createKeySealer(secret);
  const lines: string[] = [];
  try {
    for (let start = 0; start < n; start += 1000) {
      const rows = [];
      for (let i = start; i < Math.min(n, start + 1000); i++) {
        const domain = `c${i}.scale.test`;
        const key = newClientApiKey();
        lines.push(JSON.stringify({ domain, key }));
        rows.push({ domain, clientKeyHash: sealer.lookup(key), clientKeySealed: sealer.seal(domain, key) });
      }
      await database.db.insert(domainsTable).values(rows);
    }
  } finally {
    await database.close();
  }
  await Deno.writeTextFile(keysFile, lines.join("\n") + "\n");
}

/** `count` sequential GETs through the server's HTTP port, each to a random domain `pick()` names. */
async function latency(port: number, pick: () => number, count: number): Promise<Record<string, number>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const times: number[] = [];
  let failed = 0;
  for (let i = 0; i < count; i++) {
    const host = `c${pick()}.scale.test`;
    const t0 = performance.now();
    const status = await new Promise<number>((resolve) => {
      const req = http.request({ host: "127.0.0.1", port, path: "/", agent, headers: { host } }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.setTimeout(5000, () => req.destroy());
      req.on("error", () => resolve(0));
      req.end();
    });
    if (status === 200) times.push(performance.now() - t0);
    else failed++;
  }
  agent.destroy();
  times.sort((a, b) => a - b);
  const q = (p: number) =>
    Math.round((times[Math.min(times.length - 1, Math.floor(p * times.length))] ?? NaN) * 100) / 100;
  return { ok: times.length, failed, p50_ms: q(0.5), p99_ms: q(0.99), max_ms: q(1) };
}

interface Driver {
  child: Deno.ChildProcess;
  events: Record<string, unknown>[];
  send(line: string): Promise<void>;
}

function startDriver(
  dtls: string,
  keysFile: string,
  target: string,
  first: number,
  concurrency: number,
  keepAliveMs: string,
  clientPmtu: string,
): Driver {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}scripts/bench/idle_clients.ts`,
      "--server",
      dtls,
      "--keys",
      keysFile,
      "--target",
      target,
      "--first",
      String(first),
      "--concurrency",
      String(concurrency),
      "--keepalive-ms",
      keepAliveMs,
      "--pmtu",
      clientPmtu,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const events: Record<string, unknown>[] = [];
  follow(child.stdout, (o) => events.push(o));
  const writer = child.stdin.getWriter();
  return { child, events, send: (line) => writer.write(new TextEncoder().encode(`${line}\n`)) };
}

/** CPU seconds (user + system) a process has used. */
function cpuSeconds(pid: number): number {
  const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Share of one core each process uses over `ms` of idling. */
async function idleCpu(pids: number[], ms: number): Promise<number[]> {
  const before = pids.map(cpuSeconds);
  await sleep(ms);
  return pids.map((p, i) => Math.round((cpuSeconds(p) - before[i]) / (ms / 1000) * 100));
}

const mb = (bytes: number) => Math.round(bytes / 1024 / 1024 * 10) / 10;

async function main(): Promise<void> {
  const counts = flag("counts", "1000,5000,10000").split(",").map(Number);
  const drivers = Number(flag("drivers", "2"));
  const concurrency = Number(flag("concurrency", "32"));
  const snapshots = flag("snapshots", "");
  const profiles = flag("profiles", "");
  // The client's own keep-alive is 1.5 s (CLIENT_KEEPALIVE_MS): 10 000 of them cost the server about
  // a core in keep-alives alone, and the simulated clients another on the same machine, so the memory
  // steps default to the server's own 10 s cadence; --keepalive-ms 1500 measures the real CPU cost.
  const keepAliveMs = flag("keepalive-ms", "10000");
  // off: the simulated clients send no packet-size probes (16 KB datagrams that fill the server's
  // socket buffer when thousands of sessions start at once).
  const clientPmtu = flag("client-pmtu", "on");
  const max = Math.max(...counts);
  const deadline = setTimeout(() => {
    console.error("scale: 10 minutes passed; stopping");
    Deno.exit(3);
  }, 600_000);
  const pg = await startPostgres();
  const work = await Deno.makeTempDir({ prefix: "hopgate-scale-" });
  const keysFile = `${work}/keys.jsonl`;
  const origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("ok\n"));
  const children: Deno.ChildProcess[] = [];
  const rows: Record<string, unknown>[] = [];
  try {
    let t0 = performance.now();
    await registerDomains(pg.dsn, max, keysFile);
    console.log(`registered ${max} domains through the db layer in ${Math.round(performance.now() - t0)} ms`);
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const inspectPort = probe.addr.port;
    probe.close();
    const server = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `--inspect=127.0.0.1:${inspectPort}`,
        "--config",
        `${ROOT}deno.json`,
        `${ROOT}server.ts`,
      ],
      env: {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        HOME: Deno.env.get("HOME") ?? "/tmp",
        HOP_SERVER_DOMAIN: "hop.scale.test",
        HOP_ADMIN_API_KEY: "bench-admin-key-0123456789abcdef",
        HOP_SERVER_HTTP_LISTEN: "127.0.0.1:0",
        HOP_SERVER_HTTPS_LISTEN: "127.0.0.1:0",
        HOP_SERVER_DTLS_LISTEN: "127.0.0.1:0",
        HOP_SERVER_TLS_MODE: "off",
        HOP_LOG_LEVEL: "info",
        HOP_LOG_FORMAT: "json",
        HOP_DATA_DIR: `${work}/data`,
        HOP_DB_DSN: pg.dsn,
        HOP_SECRET_KEY: SECRET_HEX,
      },
      clearEnv: true,
      stdout: "piped",
      stderr: "null",
    }).spawn();
    children.push(server);
    const log: Record<string, unknown>[] = [];
    const warnings = new Map<string, number>();
    follow(server.stdout, (o) => {
      if (o.msg === "server ready") log.push(o);
      else if (o.msg === "tunnel session closed") {
        // Why sessions ended (a bench client dropped by the server shows up here).
        const k = `info tunnel: session closed (${o.kind}: ${String(o.reason ?? "").replace(/\d+/g, "N")})`;
        warnings.set(k, (warnings.get(k) ?? 0) + 1);
      } else if (o.level !== "info" && o.level !== 30) {
        const k = `${o.level} ${o.component ?? ""}: ${o.msg}`;
        warnings.set(k, (warnings.get(k) ?? 0) + 1);
      }
    });
    const ready = await waitFor(() => log.find((l) => l.msg === "server ready"), 30_000, "server ready");
    const httpPort = Number(String(ready.http).split(":").pop());
    const dtls = `127.0.0.1:${String(ready.dtls).split(":").pop()}`;
    const inspector = await connectInspector(inspectPort);
    const settle = async (label: string): Promise<MemoryUsage & { rssProc: number }> => {
      await sleep(3000);
      await inspector.gc();
      await sleep(1000);
      const m = await inspector.memory();
      if (snapshots) await inspector.snapshot(`${snapshots}/server-${label}.heapsnapshot`);
      if (profiles) await inspector.profile(`${profiles}/server-${label}.cpuprofile`, 5000);
      return { ...m, rssProc: rssKb(server.pid) * 1024 };
    };
    const base = await settle("0");
    rows.push({
      sessions: 0,
      rss_mb: mb(base.rssProc),
      heap_mb: mb(base.heapUsed),
      external_mb: mb(base.external),
    });
    console.log(JSON.stringify(rows[0]));
    const perDriver = Math.ceil(max / drivers);
    const ds = Array.from(
      { length: drivers },
      (_, d) =>
        startDriver(
          dtls,
          keysFile,
          `http://127.0.0.1:${origin.addr.port}`,
          d * perDriver,
          concurrency,
          keepAliveMs,
          clientPmtu,
        ),
    );
    children.push(...ds.map((d) => d.child));
    for (const n of counts) {
      const seen = ds.map((d) => d.events.length);
      t0 = performance.now();
      const each = Math.min(perDriver, Math.ceil(n / drivers));
      await Promise.all(ds.map((d) => d.send(`open ${each}`)));
      const opened = await Promise.all(
        ds.map((d, i) =>
          waitFor(
            () => d.events.slice(seen[i]).find((e) => e.event === "opened"),
            120_000 + n * 50,
            `${n} clients`,
          )
        ),
      );
      const seconds = (performance.now() - t0) / 1000;
      const up = opened.reduce((s, o) => s + Number(o.up), 0);
      const attempted = opened.reduce((s, o) => s + Number(o.attempted), 0);
      const failed = opened.reduce((s, o) => s + Number(o.failed), 0);
      const m = await settle(String(n));
      const [serverCpu, ...driverCpu] = await idleCpu([server.pid, ...ds.map((d) => d.child.pid)], 5000);
      // Requests go to domains whose client is up (a dropped client's 502 is counted as "dropped").
      const live = opened.flatMap((o) => o.live as number[]);
      const pick = () => live[Math.floor(Math.random() * live.length)];
      const lat = await latency(httpPort, pick, 200);
      const row = {
        sessions: up,
        failed,
        step_s: Math.round(seconds * 10) / 10,
        handshakes_per_s: Math.round(attempted / seconds),
        rss_mb: mb(m.rssProc),
        heap_mb: mb(m.heapUsed),
        external_mb: mb(m.external),
        kb_per_session_rss: Math.round((m.rssProc - base.rssProc) / 1024 / up * 10) / 10,
        kb_per_session_heap: Math.round((m.heapUsed - base.heapUsed) / 1024 / up * 10) / 10,
        latency: lat,
        idle_cpu_pct: { server: serverCpu, drivers: driverCpu },
        dropped: opened.reduce((s, o) => s + Number(o.dropped), 0),
        driver_rss_mb: opened.map((o) => Math.round(Number(o.rss_kb) / 1024)),
        errors: opened.flatMap((o) => o.errors as unknown[]),
      };
      rows.push(row);
      console.log(JSON.stringify(row));
    }
    const serverCpuTotal = cpuSeconds(server.pid);
    await Promise.all(ds.map((d) => d.send("close")));
    await Promise.all(ds.map((d) => d.child.status));
    inspector.close();
    server.kill("SIGTERM");
    await server.status;
    for (const [line, n] of warnings) console.log(`server log: ${n} × ${line}`.slice(0, 240));
    console.log(`server CPU over the run: ${serverCpuTotal} s`);
    console.log(`keep-alive of the simulated clients: ${keepAliveMs} ms`);
    const cols = [
      "sessions",
      "dropped",
      "RSS MB",
      "heap MB",
      "ext MB",
      "kB/sess RSS",
      "kB/sess heap",
      "hs/s",
    ];
    console.log(
      `\n${[...cols, "idle CPU % (server)", "latency p50/p99 ms"].map((c) => c.padStart(9)).join(" ")}`,
    );
    for (const r of rows) {
      const l = r.latency as Record<string, number> | undefined;
      const cpu = (r.idle_cpu_pct as { server: number } | undefined)?.server;
      const cells = [
        r.sessions,
        r.dropped,
        r.rss_mb,
        r.heap_mb,
        r.external_mb,
        r.kb_per_session_rss,
        r.kb_per_session_heap,
        r.handshakes_per_s,
        cpu,
        l ? `${l.p50_ms}/${l.p99_ms} (${l.failed} failed)` : undefined,
      ];
      console.log(cells.map((c, i) => String(c ?? "").padStart(i === 8 ? 19 : 9)).join(" "));
    }
  } finally {
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await origin.shutdown();
    await pg.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
    clearTimeout(deadline);
  }
}

if (import.meta.main) await main();
