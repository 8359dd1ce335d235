/**
 * Local HTTP client benchmark: the candidates for replaying tunnelled requests against the local
 * service, measured in one run against the same node:http origin (a child process, so its CPU is
 * not counted): node:http with a keep-alive Agent, npm undici's Pool, Deno's fetch, and HopGate's
 * `sendLocal`. 32 requests in flight, 1 KiB answers; prints req/s and this process's CPU time per
 * request (user + system, from process.cpuUsage).
 *
 *   deno run -A scripts/bench_local_http.ts [--seconds=N, default 3] [--rounds=N, default 1]
 */
import http from "node:http";
import process from "node:process";
import { Pool } from "undici";
import { sendLocal } from "../lib/proxy/local_http.ts";

const CONCURRENCY = 32;
const SECONDS = Number(Deno.args.find((a) => a.startsWith("--seconds="))?.slice(10) ?? 3);
const ROUNDS = Number(Deno.args.find((a) => a.startsWith("--rounds="))?.slice(9) ?? 1);

/** The origin, run in a child process: 1 KiB for every request, keep-alive. */
function serveOrigin(): void {
  const body = new TextEncoder().encode("x".repeat(1023) + "\n");
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
      res.end(body);
    });
  });
  server.listen(0, "127.0.0.1", () => {
    console.log(JSON.stringify({ port: (server.address() as { port: number }).port }));
  });
}

async function startOrigin(): Promise<{ port: number; child: Deno.ChildProcess }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--origin"],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the origin exited before printing its port");
    text += value;
  }
  reader.releaseLock();
  return { port: JSON.parse(text.split("\n")[0]).port, child };
}

type OneRequest = () => Promise<void>;

/** Runs `one` with CONCURRENCY in flight for SECONDS; returns req/s and CPU µs per request. */
async function measure(one: OneRequest): Promise<{ rps: number; cpuUs: number }> {
  for (let i = 0; i < 200; i++) await one(); // warm-up: connections, JIT
  const deadline = performance.now() + SECONDS * 1000;
  let count = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < deadline) {
      await one();
      count++;
    }
  }));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { rps: count / elapsed, cpuUs: (cpu.user + cpu.system) / count };
}

function nodeHttp(port: number): { one: OneRequest; close(): void } {
  const agent = new http.Agent({ keepAlive: true });
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, path: "/small", agent, headers: ["Host", "x"] });
      req.on("response", (res) => {
        res.on("data", () => {});
        res.on("end", resolve);
      });
      req.on("error", reject);
      req.end();
    });
  return { one, close: () => agent.destroy() };
}

function undici(port: number): { one: OneRequest; close(): void } {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONCURRENCY });
  const one = async () => {
    const res = await pool.request({ path: "/small", method: "GET", headers: ["host", "x"] });
    for await (const _ of res.body) { /* drain */ }
  };
  return { one, close: () => void pool.close() };
}

function denoFetch(port: number): { one: OneRequest; close(): void } {
  const one = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/small`);
    await res.arrayBuffer();
  };
  return { one, close: () => {} };
}

function hopgate(port: number): { one: OneRequest; close(): void } {
  const origin = new URL(`http://127.0.0.1:${port}`);
  const one = () =>
    new Promise<void>((resolve, reject) => {
      sendLocal(origin, {
        method: "GET",
        target: "/small",
        headers: [["Host", "x"]],
        body: null,
        protocol: "h1",
      }, {
        head: () => ({ write: () => true, onDrain() {}, end: () => resolve(), abort: reject }),
        upgraded: () => reject(new Error("unexpected upgrade")),
        error: reject,
      });
    });
  return { one, close: () => {} };
}

if (Deno.args.includes("--origin")) {
  serveOrigin();
} else {
  const { port, child } = await startOrigin();
  const rows: [string, (port: number) => { one: OneRequest; close(): void }][] = [
    ["node:http Agent", nodeHttp],
    ["undici Pool", undici],
    ["Deno fetch", denoFetch],
    ["sendLocal (h1)", hopgate],
  ];
  console.log(`${CONCURRENCY} in flight, 1 KiB answers, ${SECONDS} s per row, ${ROUNDS} round(s)`);
  console.log(`load average at start: ${Deno.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  const best = new Map<string, { rps: number; cpuUs: number }>();
  const line = (name: string, r: { rps: number; cpuUs: number }) =>
    `${name.padEnd(18)} ${r.rps.toFixed(0).padStart(7)} req/s ${r.cpuUs.toFixed(1).padStart(7)} µs CPU/req`;
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, make] of rows) {
      const client = make(port);
      const r = await measure(client.one);
      client.close();
      console.log(line(name, r));
      const b = best.get(name);
      best.set(name, { rps: Math.max(b?.rps ?? 0, r.rps), cpuUs: Math.min(b?.cpuUs ?? Infinity, r.cpuUs) });
    }
  }
  if (ROUNDS > 1) {
    console.log("best of the rounds (highest req/s, lowest CPU/req, each on its own):");
    for (const [name, r] of best) console.log(line(name, r));
  }
  child.kill();
  await child.status;
}
