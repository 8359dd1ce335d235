/**
 * `deno task bench`: HopGate end to end on loopback, next to the same load sent straight to the
 * origin, in one run. Starts a local origin (scripts/bench/origin.ts), servers and clients, then
 * measures:
 *
 *   - small requests: 1 KB responses, 32 keep-alive connections (wrk): requests/s, p50, p99;
 *   - one big download and one big upload (curl): MB/s (1 MB = 10^6 bytes);
 *   - WebSocket echo round trips (npm ws): p50, p99;
 *   - server and client resident memory: idle, under load, and with N idle tunnel sessions open
 *     (scripts/bench/sessions.ts opens them from one process with the library) → kB per session;
 *   - small requests and the download again in a private network namespace with a 1 500-byte MTU,
 *     then with 1 % and 2 % random loss on the tunnel's UDP port only (iptables statistic match),
 *     plus a TCP baseline: the origin straight, with the same loss on its TCP port.
 *
 * Prints tables (each HopGate figure also as a ratio to the direct one, targets alongside; no
 * pass/fail exit status) and writes bench-results/bench-<timestamp>.json with the process logs'
 * notable lines next to it.
 *
 *   deno run -A scripts/bench.ts [--quick] [--no-netns] [--profile] [--gc] [--only=refs]
 *
 * --quick: 3 s load phases, 20 MB transfers, 200 sessions. --no-netns: skip the namespace rows.
 * Reference rows (scripts/bench/refs.ts), same run and origin: a one-hop Deno proxy and ssh -R over
 * loopback, with CPU microseconds per request for every row. --only=refs: direct and the references
 * only (no HopGate stack, no namespace rows).
 * --profile: one more HTTP stack, its server and client under deno --cpu-prof, small-request load only;
 * the profiles go to bench-results/ and are summarized in the report (idle share, top functions).
 * --gc: one more HTTP stack with V8's GC trace (--trace-gc-nvp), small-request load only: scavenges,
 * their pauses and what survives each, for server and client (scripts/bench/gc_trace.ts).
 * The namespace rows need root, ip (iproute2) and iptables; as root, missing tools (and wrk) are
 * installed with apt-get. Everything listens on 127.0.0.1 only.
 */
import { createdProcs, Proc, rssKb, rssPeaks, run, sleep, stopAll } from "./bench/proc.ts";
import {
  curlDownload,
  curlUpload,
  type EchoResult,
  MB,
  type SmallResult,
  type TransferResult,
  wrk,
  wsEcho,
} from "./bench/measure.ts";
import {
  BENCH_DOMAIN,
  type Origin,
  type Stack,
  startClient,
  startOrigin,
  startStack,
  stopStack,
} from "./bench/stack.ts";
import { ensureCommands, Namespace, netnsUnavailable, PATH_MTU } from "./bench/netns.ts";
import { buildReport } from "./bench/report.ts";
import type { Results } from "./bench/results.ts";
import { summarize } from "./bench/profile_summary.ts";
import { processTree } from "./bench/cpu.ts";
import { fmtCpu, measureRefs, smallWithCpu } from "./bench/refs.ts";
import { fmtGc, summarizeGcTrace } from "./bench/gc_trace.ts";

const root = new URL("../", import.meta.url).pathname;
const NETNS_DTLS_PORT = 4433;
const SESSIONS_DOMAIN = `sessions.${BENCH_DOMAIN}`;
const args = new Set(Deno.args);
for (const a of args) {
  if (!["--quick", "--no-netns", "--profile", "--gc", "--only=refs"].includes(a)) {
    console.error(
      `bench: unknown argument ${a}\nusage: deno task bench [--quick] [--no-netns] [--profile] [--gc] [--only=refs]`,
    );
    Deno.exit(2);
  }
}
const QUICK = args.has("--quick");
const ONLY_REFS = args.has("--only=refs");
const CONFIG = {
  mode: QUICK ? "quick" : "full",
  loadSeconds: QUICK ? 3 : 10,
  /** Load before each small-request row's measured run, discarded (smallWithCpu in scripts/bench/refs.ts). */
  warmupSeconds: QUICK ? 1 : 2,
  connections: 32,
  /** wrk threads: 2, as the team's side-by-side harness (shared/peers/bench.sh) that issue 10's figures come from. */
  wrkThreads: 2,
  transferBytes: QUICK ? 20 * MB : 100 * MB,
  sessions: QUICK ? 200 : 1000,
  sessionConcurrency: 50,
  wsRoundTrips: QUICK ? 500 : 2000,
  lossRates: [0.01, 0.02],
  /** Cap per transfer in the namespace (loss can make TCP crawl): the figure is then for the part moved. */
  lossyTransferMaxS: QUICK ? 10 : 20,
  transferMaxS: QUICK ? 30 : 60,
};

const stamp = new Date().toISOString().replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
const outDir = `${root}bench-results`;
const keptLogDir = `${outDir}/bench-${stamp}-logs`;
const work = await Deno.makeTempDir({ prefix: "hopbench-" });
const logDir = `${work}/logs`;
await Deno.mkdir(logDir, { recursive: true });
await Deno.mkdir(outDir, { recursive: true });

const namespace = new Namespace();
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await stopAll();
    await namespace.remove();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  })();
  return cleaning;
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  Deno.addSignalListener(signal, () => {
    console.error(`\nbench: ${signal}, cleaning up`);
    cleanup().finally(() => Deno.exit(130));
  });
}

const results: Results = {
  timestamp: new Date().toISOString(),
  config: CONFIG,
  env: {},
  small: {},
  transfer: {},
  ws: {},
  memory: {},
  lossy: { rows: [] },
  problems: [],
  logs: {},
};

/** The origin of the main rows (its CPU per request is printed next to every row's, for scale). */
const originPids: number[] = [];

function problem(message: string): void {
  results.problems.push(message);
  console.error(`! ${message}`);
}

function say(line: string): void {
  console.error(`· ${line}`);
}

/** Runs one phase; a failure is recorded and the run goes on. */
async function phase<T>(name: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    problem(`${name}: ${(e as Error).message}`);
    return undefined;
  }
}

const fmtSmall = (r: SmallResult) =>
  `${r.rps.toFixed(0)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms` +
  (r.errors.timeout + r.errors.connect + r.errors.read + r.errors.write + r.non2xx > 0
    ? ` (errors ${JSON.stringify(r.errors)}, non-2xx ${r.non2xx})`
    : "");
const fmtTransfer = (r: TransferResult) =>
  `${r.mbPerS.toFixed(1)} MB/s (${(r.bytes / MB).toFixed(1)} MB in ${
    r.seconds.toFixed(2)
  } s, HTTP ${r.httpVersion} ${r.httpCode}${r.complete ? "" : `, INCOMPLETE, curl exit ${r.curlExit}`})`;
const fmtEcho = (r: EchoResult) => `p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms`;

async function environment(): Promise<void> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const first = async (argv: string[]) => {
    const r = await run(argv).catch(() => null);
    return r ? (r.stdout + r.stderr).split("\n")[0].trim() : "missing";
  };
  results.env = {
    cpus: navigator.hardwareConcurrency,
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "?",
    memTotalMb: Math.round(Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? NaN) / 1024),
    os: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    wrk: await first(["wrk", "-v"]),
    curl: await first(["curl", "--version"]),
    gitCommit:
      (await run(["git", "-C", root, "rev-parse", "--short", "HEAD"]).catch(() => null))?.stdout.trim() ??
        "?",
    gitDirty:
      ((await run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"]).catch(() => null))
        ?.stdout.trim().length ?? 0) > 0,
    loadAverage: { start: loadAverage() },
  };
}

/** The 1-minute load average: other processes on the machine compete with every figure here. */
function loadAverage(): number {
  return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
}

async function uploadFile(bytes: number): Promise<string> {
  const path = `${work}/upload-${bytes}.bin`;
  const f = await Deno.open(path, { create: true, write: true, truncate: true });
  await f.truncate(bytes); // sparse: nothing stored
  f.close();
  return path;
}

async function direct(origin: Origin, upload: string): Promise<void> {
  const base = `http://127.0.0.1:${origin.port}`;
  await phase("direct small requests", async () => {
    const { small: r, cpu } = await smallWithCpu({ config: CONFIG }, `${base}/small`, {
      origin: [origin.proc.pid],
    });
    results.small.direct = r;
    (results.cpu ??= {}).direct = cpu;
    say(`direct small requests: ${fmtSmall(r)}; ${fmtCpu(results.cpu.direct)}`);
  });
  await phase("direct download", async () => {
    const r = await curlDownload({ url: base, maxTimeS: CONFIG.transferMaxS }, CONFIG.transferBytes);
    (results.transfer.direct ??= {}).download = r;
    say(`direct download: ${fmtTransfer(r)}`);
  });
  await phase("direct upload", async () => {
    const r = await curlUpload({ url: base, maxTimeS: CONFIG.transferMaxS }, upload, CONFIG.transferBytes);
    (results.transfer.direct ??= {}).upload = r;
    say(`direct upload: ${fmtTransfer(r)}`);
  });
  await phase("direct WebSocket echo", async () => {
    const r = await wsEcho(`ws://127.0.0.1:${origin.port}/ws`, CONFIG.wsRoundTrips);
    results.ws.direct = r;
    say(`direct WebSocket echo: ${fmtEcho(r)}`);
  });
}

/** Idle tunnel sessions from one process; server RSS before and after → kB per session. */
async function sessions(stack: Stack, memory: Results["memory"][string]): Promise<void> {
  const domain = SESSIONS_DOMAIN;
  const key = stack.keys[domain];
  await sleep(1000);
  const before = rssKb(stack.server.pid);
  say(`opening ${CONFIG.sessions} idle sessions (${CONFIG.sessionConcurrency} handshakes at a time)...`);
  const driver = new Proc(
    "sessions",
    [
      Deno.execPath(),
      "run",
      "-A",
      `${root}scripts/bench/sessions.ts`,
      "--server",
      `127.0.0.1:${stack.dtlsPort}`,
      "--domain",
      domain,
      "--key",
      key,
      "--count",
      String(CONFIG.sessions),
      "--concurrency",
      String(CONFIG.sessionConcurrency),
    ],
    `${logDir}/sessions.log`,
    { stdin: "piped" },
  );
  try {
    const opened = await driver.waitJson(
      (o) => o.event === "opened",
      30_000 + CONFIG.sessions * 200,
      "sessions 'opened' line",
    );
    await sleep(2000);
    const after = rssKb(stack.server.pid);
    const readyz = await run([
      "curl",
      "-sS",
      "--max-time",
      "10",
      "--cacert",
      stack.ca!,
      "--resolve",
      `localhost:${stack.httpsPort}:127.0.0.1`,
      `https://localhost:${stack.httpsPort}/readyz`,
    ]);
    let serverCount = NaN;
    try {
      serverCount = JSON.parse(readyz.stdout).sessions;
    } catch { /* below */ }
    const n = Number(opened.opened);
    memory.sessions = {
      requested: CONFIG.sessions,
      opened: n,
      failed: Number(opened.failed),
      errors: opened.errors,
      openSeconds: Number(opened.seconds),
      serverSessionsReported: serverCount,
      serverRssBeforeKb: before,
      serverRssAfterKb: after,
      serverKbPerSession: n > 0 ? (after - before) / n : NaN,
      driverKbPerSession: n > 0 ? (Number(opened.rss_kb_after) - Number(opened.rss_kb_before)) / n : NaN,
    };
    say(
      `sessions: ${n} open (${opened.failed} failed) in ${opened.seconds} s; server ${before} → ${after} kB = ${
        memory.sessions.serverKbPerSession.toFixed(1)
      } kB/session; server reports ${serverCount} sessions`,
    );
    const w = driver.child.stdin.getWriter();
    await w.write(new TextEncoder().encode("close\n"));
    await w.close().catch(() => {});
    await driver.waitJson((o) => o.event === "closed", 60_000, "sessions 'closed' line").catch((e) => {
      results.problems.push(`sessions close: ${(e as Error).message.split("\n")[0]}`);
    });
    await sleep(2000);
    memory.sessions.serverRssAfterCloseKb = rssKb(stack.server.pid);
  } finally {
    await driver.stop(3000);
  }
}

/** Small requests, transfers and WebSocket echo through one stack, sampling its RSS. */
async function throughStack(
  label: "hopHttp" | "hopHttps" | "hopTcp",
  stack: Stack,
  upload: string,
  withSessions: boolean,
): Promise<void> {
  const memory: Results["memory"][string] = (results.memory[label] = {});
  const pids = { server: stack.server.pid, client: stack.client.pid };
  await sleep(2000);
  memory.idleKb = { server: rssKb(stack.server.pid), client: rssKb(stack.client.pid) };
  memory.freshDbServerKb = stack.freshDbRssKb;
  say(`${label} idle RSS: server ${memory.idleKb.server} kB, client ${memory.idleKb.client} kB`);
  if (withSessions) await phase(`${label} idle sessions`, () => sessions(stack, memory));

  const isHttps = stack.tls !== "off";
  await phase(`${label} small requests`, async () => {
    const url = isHttps
      ? `https://127.0.0.1:${stack.httpsPort}/small`
      : `http://127.0.0.1:${stack.httpPort}/small`;
    // The peak covers the discarded warm-up too: the same load.
    const peaks = rssPeaks(pids);
    const { small: r, cpu } = await smallWithCpu({ config: CONFIG }, url, {
      server: processTree(pids.server),
      client: processTree(pids.client),
      origin: originPids,
    }, BENCH_DOMAIN);
    memory.smallLoadPeakKb = peaks();
    results.small[label] = r;
    (results.cpu ??= {})[label] = cpu;
    say(`${label} small requests: ${fmtSmall(r)}; ${fmtCpu(results.cpu[label])}`);
  });
  if (!isHttps) {
    await phase("HopGate front only", async () => {
      // The server's own /healthz: the HTTP front, routing and access log, no tunnel (a reference).
      const r = await wrk(`http://127.0.0.1:${stack.httpPort}/healthz`, {
        seconds: CONFIG.loadSeconds,
        connections: CONFIG.connections,
        threads: CONFIG.wrkThreads,
      });
      results.small.frontOnly = r;
      say(`HopGate front only (/healthz): ${fmtSmall(r)}`);
    });
  }
  const target = {
    url: stack.base,
    resolve: stack.resolve,
    cacert: stack.ca ?? undefined,
    maxTimeS: CONFIG.transferMaxS,
  };
  const peaks = rssPeaks(pids);
  await phase(`${label} download`, async () => {
    const r = await curlDownload(target, CONFIG.transferBytes);
    (results.transfer[label] ??= {}).download = r;
    say(`${label} download: ${fmtTransfer(r)}`);
  });
  await phase(`${label} upload`, async () => {
    const r = await curlUpload(target, upload, CONFIG.transferBytes);
    (results.transfer[label] ??= {}).upload = r;
    say(`${label} upload: ${fmtTransfer(r)}`);
  });
  memory.transferPeakKb = peaks();
  await phase(`${label} WebSocket echo`, async () => {
    const url = `${isHttps ? "wss" : "ws"}://${BENCH_DOMAIN}:${
      isHttps ? stack.httpsPort : stack.httpPort
    }/ws`;
    const ca = stack.ca ? await Deno.readTextFile(stack.ca) : undefined;
    const r = await wsEcho(url, CONFIG.wsRoundTrips, ca);
    results.ws[label] = r;
    say(`${label} WebSocket echo: ${fmtEcho(r)}`);
  });
  await sleep(1000);
  memory.afterKb = { server: rssKb(stack.server.pid), client: rssKb(stack.client.pid) };
}

/** A separate HTTP stack with V8's GC trace on both sides, under the small-request load only. */
async function gcTrace(origin: Origin): Promise<void> {
  const trace = ["--v8-flags=--trace-gc-nvp"];
  const stack = await startStack({
    name: "gc-traced",
    tls: "off",
    originPort: origin.port,
    logDir,
    dataDir: `${work}/data-gc-traced`,
    problem,
    serverDenoArgs: trace,
    clientDenoArgs: trace,
  });
  try {
    // Only the collections during the load count: the logs are read from their size at its start.
    const from = {
      server: await fileSize(stack.server.logFile),
      client: await fileSize(stack.client.logFile),
    };
    const r = await wrk(`http://127.0.0.1:${stack.httpPort}/small`, {
      seconds: CONFIG.loadSeconds,
      connections: CONFIG.connections,
      threads: CONFIG.wrkThreads,
      host: BENCH_DOMAIN,
    });
    say(`GC-traced HTTP stack, small requests: ${fmtSmall(r)}`);
    results.gc = {};
    for (const who of ["server", "client"] as const) {
      const text = (await Deno.readTextFile(stack[who].logFile)).slice(from[who]);
      results.gc[who] = summarizeGcTrace(text) ?? null;
      say(`  ${who} GC: ${fmtGc(summarizeGcTrace(text))}`);
    }
  } finally {
    await stopStack(stack);
  }
}

async function fileSize(path: string): Promise<number> {
  return (await Deno.stat(path)).size;
}

/**
 * A separate HTTP stack, server and client under deno --cpu-prof, with only the small-request load:
 * the profiles then say where that load's time goes (plus start-up and shutdown, mostly idle).
 */
async function profile(origin: Origin): Promise<void> {
  const profDir = `${outDir}/bench-${stamp}-prof`;
  const stack = await startStack({
    name: "profiled",
    tls: "off",
    originPort: origin.port,
    logDir,
    dataDir: `${work}/data-profiled`,
    problem,
    serverDenoArgs: ["--cpu-prof", `--cpu-prof-dir=${profDir}/server`],
    clientDenoArgs: ["--cpu-prof", `--cpu-prof-dir=${profDir}/client`],
  });
  try {
    const r = await wrk(`http://127.0.0.1:${stack.httpPort}/small`, {
      seconds: CONFIG.loadSeconds,
      connections: CONFIG.connections,
      threads: CONFIG.wrkThreads,
      host: BENCH_DOMAIN,
    });
    say(`profiled HTTP stack, small requests: ${fmtSmall(r)}`);
  } finally {
    await stopStack(stack);
  }
  results.profiles = {};
  for (const who of ["server", "client"]) {
    let names: string[] = [];
    try {
      names = [...Deno.readDirSync(`${profDir}/${who}`)].map((f) => f.name);
    } catch { /* no profile written */ }
    for (const name of names.filter((n) => n.endsWith(".cpuprofile"))) {
      const path = `${profDir}/${who}/${name}`;
      results.profiles[who] = {
        file: path,
        summary: summarize(JSON.parse(await Deno.readTextFile(path)), 15),
      };
    }
  }
  say(`CPU profiles in ${profDir}`);
}

/** Client settings for the TCP carrier against a self-signed stack (its CA, its server name). */
function tcpCarrierEnv(stack: Stack): Record<string, string> {
  return {
    HOP_CLIENT_TRANSPORT: "tcp",
    HOP_CLIENT_CA_FILE: stack.ca ?? "",
    HOP_CLIENT_SERVER_NAME: "hop.bench.test",
  };
}

async function lossy(): Promise<void> {
  if (args.has("--no-netns") || ONLY_REFS) {
    results.lossy.skipped = ONLY_REFS ? "--only=refs" : "--no-netns";
    return;
  }
  const why = await netnsUnavailable();
  if (why) {
    results.lossy.skipped = why;
    console.error(`! lossy rows skipped: ${why}`);
    return;
  }
  const ns = namespace.name;
  await namespace.create();
  say(`namespace ${ns}: lo up, MTU ${PATH_MTU}`);
  try {
    // The namespace is private, so a fixed tunnel port is free; the MTU rule must be in place before
    // the tunnel starts, or its packet size discovery settles on 16 KB (see Namespace.rules).
    const dtlsPort = NETNS_DTLS_PORT;
    await namespace.pathRules(dtlsPort);
    const origin = await startOrigin(logDir, ns);
    const stack = await startStack({
      name: "netns",
      dtlsPort,
      tls: "off",
      originPort: origin.port,
      logDir,
      dataDir: `${work}/data-netns`,
      problem,
      ns,
    });
    results.lossy.ports = { origin: origin.port, dtls: stack.dtlsPort, http: stack.httpPort };
    const small = (url: string, host?: string, seconds = CONFIG.loadSeconds) =>
      wrk(url, { seconds, connections: CONFIG.connections, threads: CONFIG.wrkThreads, host, ns });
    const down = (url: string, resolve?: string, maxTimeS = CONFIG.lossyTransferMaxS) =>
      curlDownload({ url, resolve, ns, maxTimeS }, CONFIG.transferBytes);
    const directUrl = `http://127.0.0.1:${origin.port}`;
    const hopSmallUrl = `http://127.0.0.1:${stack.httpPort}/small`;

    const measure = async (
      condition: string,
      path: "direct" | "hopHttp" | "baseline",
      loss: number,
      rules: Parameters<Namespace["loss"]>[0],
      limits: { seconds?: number; maxTimeS?: number } = {},
    ) => {
      await namespace.loss(rules);
      // One request first, so the tunnel has seen the new loss before the clock starts.
      if (path === "hopHttp") {
        await run([
          "curl",
          "-s",
          "-o",
          "/dev/null",
          "--max-time",
          "5",
          "--resolve",
          stack.resolve,
          `${stack.base}/small`,
        ], {
          ns,
        });
      }
      const row: Results["lossy"]["rows"][number] = { condition, path, loss };
      await phase(`${condition} ${path} small requests`, async () => {
        row.small = path === "hopHttp"
          ? await small(hopSmallUrl, BENCH_DOMAIN, limits.seconds)
          : await small(`${directUrl}/small`, undefined, limits.seconds);
        say(`${condition} ${path} small requests: ${fmtSmall(row.small)}`);
      });
      await phase(`${condition} ${path} download`, async () => {
        row.download = path === "hopHttp"
          ? await down(stack.base, stack.resolve, limits.maxTimeS)
          : await down(directUrl, undefined, limits.maxTimeS);
        say(`${condition} ${path} download: ${fmtTransfer(row.download)}`);
      });
      row.iptables = await namespace.counters();
      results.lossy.rows.push(row);
    };
    const base = { udpPort: stack.dtlsPort, tcpPort: origin.port };
    await measure(`MTU ${PATH_MTU}`, "direct", 0, base);
    await measure(`MTU ${PATH_MTU}`, "hopHttp", 0, base);
    for (const p of CONFIG.lossRates) {
      const condition = `${p * 100}% loss`;
      await measure(condition, "hopHttp", p, { ...base, udpLoss: p });
      await measure(condition, "baseline", p, { ...base, tcpLoss: p });
    }
    // A path whose MTU shrinks under a live session (a route change, a VPN coming up): the tunnel first
    // discovers 16 KB datagrams (lo fragments them), then everything over 1 500 bytes is dropped.
    await phase("MTU drop mid-session", async () => {
      await namespace.loss({});
      await namespace.mtuRule(stack.dtlsPort, false);
      await startClient(stack);
      await curlDownload({ url: stack.base, resolve: stack.resolve, ns, maxTimeS: 10 }, 5 * MB);
      await sleep(500);
      await namespace.mtuRule(stack.dtlsPort, true);
      await measure(`MTU 64K→${PATH_MTU} mid-session`, "hopHttp", 0, base, { seconds: 5, maxTimeS: 10 });
    });
    await namespace.loss({});
    await stopStack(stack);
    await phase("TCP carrier rows", async () => {
      const tcp = await startStack({
        name: "netns-tcp",
        tls: "self-signed",
        originPort: origin.port,
        logDir,
        dataDir: `${work}/data-netns-tcp`,
        problem,
        ns,
        clientEnv: tcpCarrierEnv,
      });
      try {
        const target = { url: tcp.base, resolve: tcp.resolve, cacert: tcp.ca ?? undefined, ns };
        for (const p of [0, ...CONFIG.lossRates]) {
          const condition = p === 0 ? `MTU ${PATH_MTU}` : `${p * 100}% loss`;
          // The carrier's TLS stream runs on the DTLS port number, over TCP.
          await namespace.loss({ tcpPort: tcp.dtlsPort, tcpLoss: p });
          const row: Results["lossy"]["rows"][number] = { condition, path: "hopTcp", loss: p };
          await phase(`${condition} hopTcp small requests`, async () => {
            row.small = await wrk(`https://127.0.0.1:${tcp.httpsPort}/small`, {
              seconds: CONFIG.loadSeconds,
              connections: CONFIG.connections,
              host: BENCH_DOMAIN,
              ns,
            });
            say(`${condition} hopTcp small requests: ${fmtSmall(row.small)}`);
          });
          await phase(`${condition} hopTcp download`, async () => {
            row.download = await curlDownload(
              { ...target, maxTimeS: CONFIG.lossyTransferMaxS },
              CONFIG.transferBytes,
            );
            say(`${condition} hopTcp download: ${fmtTransfer(row.download)}`);
          });
          row.iptables = await namespace.counters();
          results.lossy.rows.push(row);
        }
      } finally {
        await namespace.loss({});
        await stopStack(tcp);
      }
    });
    await origin.proc.stop();
  } finally {
    await stopAll();
    await namespace.remove();
  }
}

async function main(): Promise<void> {
  const missing = await ensureCommands({ wrk: "wrk", curl: "curl" });
  if (missing) {
    console.error(`bench: ${missing}; wrk and curl are required`);
    Deno.exit(1);
  }
  await environment();
  const e = results.env;
  say(
    `${CONFIG.mode} run; ${e.cpus} CPUs (${e.cpuModel}), ${e.memTotalMb} MB, ${e.os}, Deno ${e.deno}, ${e.wrk}`,
  );
  const upload = await uploadFile(CONFIG.transferBytes);
  const origin = await startOrigin(logDir);
  say(`origin on 127.0.0.1:${origin.port}`);
  originPids.push(origin.proc.pid);
  await direct(origin, upload);
  results.refs = {};
  await measureRefs({
    config: CONFIG,
    originPid: origin.proc.pid,
    originPort: origin.port,
    work,
    logDir,
    upload,
    refs: results.refs,
    cpu: results.cpu ??= {},
    phase,
    say,
  });
  if (ONLY_REFS) results.only = "refs";

  await phase("HTTPS stack", async () => {
    if (ONLY_REFS) return; // --only=refs: no HopGate stack
    const stack = await startStack({
      name: "https",
      tls: "self-signed",
      originPort: origin.port,
      logDir,
      dataDir: `${work}/data-https`,
      extraDomains: [SESSIONS_DOMAIN],
      problem,
    });
    say(`HTTPS stack: server https :${stack.httpsPort}, DTLS :${stack.dtlsPort}, client up`);
    try {
      await throughStack("hopHttps", stack, upload, true);
    } finally {
      await stopStack(stack);
    }
  });

  await phase("HTTP stack", async () => {
    if (ONLY_REFS) return; // --only=refs: no HopGate stack
    const stack = await startStack({
      name: "http",
      tls: "off",
      originPort: origin.port,
      logDir,
      dataDir: `${work}/data-http`,
      problem,
    });
    say(`HTTP stack (TLS off): server http :${stack.httpPort}, DTLS :${stack.dtlsPort}, client up`);
    try {
      await throughStack("hopHttp", stack, upload, false);
    } finally {
      await stopStack(stack);
    }
  });
  if (!ONLY_REFS) {
    await phase("HTTPS stack, TCP carrier", async () => {
      const stack = await startStack({
        name: "https-tcp",
        tls: "self-signed",
        originPort: origin.port,
        logDir,
        dataDir: `${work}/data-https-tcp`,
        problem,
        clientEnv: tcpCarrierEnv,
      });
      say(
        `HTTPS stack, TCP carrier: server https :${stack.httpsPort}, tunnel TLS :${stack.dtlsPort}, client up`,
      );
      try {
        await throughStack("hopTcp", stack, upload, false);
      } finally {
        await stopStack(stack);
      }
    });
  }
  if (args.has("--profile") && !ONLY_REFS) await phase("CPU profiles", () => profile(origin));
  if (args.has("--gc") && !ONLY_REFS) await phase("GC trace", () => gcTrace(origin));
  await origin.proc.stop();

  (results.env.loadAverage as Record<string, number>).beforeNamespace = loadAverage();
  await phase("lossy namespace", lossy);
  (results.env.loadAverage as Record<string, number>).end = loadAverage();

  for (const p of createdProcs()) results.logs[p.name] = await p.summarize();
  await keepLogs(results.logs);
  const report = buildReport(results);
  const jsonPath = `${outDir}/bench-${stamp}.json`;
  await Deno.writeTextFile(jsonPath, JSON.stringify(results, null, 2) + "\n");
  console.log(`\n${report}`);
  console.log(`\nJSON: ${jsonPath}\nlog excerpts: ${keptLogDir}/`);
}

/** Keeps each process log's non-request lines (the request lines are the bulk and say little). */
async function keepLogs(logs: Results["logs"]): Promise<void> {
  await Deno.mkdir(keptLogDir, { recursive: true });
  for (const p of createdProcs()) {
    const out = await Deno.open(`${keptLogDir}/${p.name}.log`, { create: true, write: true, truncate: true });
    const writer = out.writable.getWriter();
    const encoder = new TextEncoder();
    let kept = 0;
    const file = await Deno.open(p.logFile).catch(() => null);
    if (file) {
      let rest = "";
      const decoder = new TextDecoder();
      for await (const chunk of file.readable) {
        const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n");
        rest = lines.pop() ?? "";
        for (const line of lines) {
          if (line.includes('"msg":"request"') && line.includes('"level":"info"')) continue;
          if (kept++ < 5000) await writer.write(encoder.encode(line + "\n"));
        }
      }
    }
    await writer.close();
    logs[p.name].kept = `${keptLogDir}/${p.name}.log`;
  }
}

try {
  await main();
} finally {
  await cleanup();
}
Deno.exit(0);
