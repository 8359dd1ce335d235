/**
 * DTLS throughput on loopback: our client adapter (node-dtls-client's handshake, then our own
 * record path) ↔ our server, each way, at 1 200 and 16 000-byte payloads, next to raw UDP
 * (Deno.listenDatagram ↔ Deno.listenDatagram) measured in the same run. "CPU µs/rec" is the
 * process's CPU time (user + system, both ends) per delivered record; the server side is the
 * same code in every run, so a change in it is the client's. Both ends run in this one process, so the sender reads the receiver's
 * counter directly and keeps at most WINDOW datagrams in flight: a closed loop that measures
 * per-record cost rather than how fast the socket buffer overflows.
 *
 *   deno run -A scripts/bench_dtls.ts [seconds per figure, default 2] [window, default 64]
 */
import { startDtlsServer } from "../lib/dtls/server.ts";
import { connectDtls } from "../lib/dtls/client.ts";
import type { DatagramSession } from "../lib/dtls/session.ts";
import { setImmediate } from "node:timers";
import process from "node:process";
import { RecordOpener, RecordSealer, SUITES } from "../lib/dtls/cipher.ts";
import { CipherSuiteId } from "../lib/dtls/constants.ts";
import { newRecordHeader, readRecordHeader } from "../lib/dtls/record.ts";

const SECONDS = Number(Deno.args[0] ?? 2);
const SIZES = [1200, 16_000];
const WINDOW = Number(Deno.args[1] ?? 64);
const psk = crypto.getRandomValues(new Uint8Array(32));
const identity = "bench.example.com";

interface Figure {
  records: number;
  bytes: number;
  seconds: number;
  lost: number;
  /** Process CPU (user + system) per received record, both ends together, in µs. */
  cpuUs: number;
}

/** Sends for SECONDS with at most WINDOW in flight; `received()` is the receiver's running count. */
async function run(
  send: (payload: Uint8Array) => void,
  received: () => number,
  size: number,
): Promise<Figure> {
  const payload = crypto.getRandomValues(new Uint8Array(size));
  let sent = 0;
  let lost = 0;
  let lastProgress = performance.now();
  let lastReceived = 0;
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const end = start + SECONDS * 1000;
  while (performance.now() < end) {
    const r = received();
    if (r !== lastReceived) {
      lastReceived = r;
      lastProgress = performance.now();
    } else if (performance.now() - lastProgress > 50) {
      // Nothing arrived for 50 ms: count what is in flight as lost and reopen the window.
      lost += sent - lost - r;
      lastProgress = performance.now();
    }
    while (sent - lost - received() < WINDOW) {
      send(payload);
      sent++;
    }
    // setImmediate lets pending I/O run without setTimeout's clamping of nested timers.
    await new Promise((res) => setImmediate(res));
  }
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const atEnd = received();
  await new Promise((res) => setTimeout(res, 100));
  return {
    records: received(),
    bytes: received() * size,
    seconds,
    lost,
    cpuUs: (cpu.user + cpu.system) / Math.max(1, atEnd),
  };
}

async function dtlsFigures(): Promise<Map<string, Figure>> {
  let serverSession: DatagramSession | undefined;
  let serverCount = 0;
  const server = await startDtlsServer({
    hostname: "127.0.0.1",
    port: 0,
    lookupPsk: (id) => Promise.resolve(id === identity ? psk : null),
    onSession: (s) => {
      serverSession = s;
      s.onDatagram(() => serverCount++);
    },
  });
  const client = await connectDtls({ hostname: "127.0.0.1", port: server.addr.port, identity, psk });
  let clientCount = 0;
  client.onDatagram(() => clientCount++);
  while (serverSession === undefined) await new Promise((r) => setTimeout(r, 5));
  const s = serverSession;
  const out = new Map<string, Figure>();
  for (const size of SIZES) {
    serverCount = 0;
    out.set(`client→server ${size}`, await run((p) => client.send(p), () => serverCount, size));
    clientCount = 0;
    out.set(`server→client ${size}`, await run((p) => s.send(p), () => clientCount, size));
  }
  client.close();
  await client.closed;
  await server.close();
  return out;
}

async function rawFigures(): Promise<Map<string, Figure>> {
  const a = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const b = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  let count = 0;
  let stop = false;
  const loop = (async () => {
    const buf = new Uint8Array(65536);
    while (!stop) {
      try {
        await b.receive(buf);
        count++;
      } catch {
        return;
      }
    }
  })();
  const to = b.addr as Deno.NetAddr;
  const out = new Map<string, Figure>();
  for (const size of SIZES) {
    count = 0;
    out.set(`raw ${size}`, await run((p) => void a.send(p, to).catch(() => {}), () => count, size));
  }
  stop = true;
  a.close();
  b.close();
  await loop;
  return out;
}

/** Our record protection alone (seal, then open), no sockets: the floor of the per-record cost. */
function cipherFigures(): string[] {
  const suite = SUITES[CipherSuiteId.TLS_PSK_WITH_AES_128_GCM_SHA256];
  const key = crypto.getRandomValues(new Uint8Array(16));
  const salt = crypto.getRandomValues(new Uint8Array(4));
  const sealer = new RecordSealer(suite, key, salt);
  const opener = new RecordOpener(suite, key, salt);
  const lines: string[] = [];
  for (const size of SIZES) {
    const payload = crypto.getRandomValues(new Uint8Array(size));
    const h = newRecordHeader();
    let n = 0;
    const start = performance.now();
    const end = start + Math.min(1000, SECONDS * 500);
    while (performance.now() < end) {
      for (let i = 0; i < 100; i++, n++) {
        const rec = sealer.seal({ type: 23, version: 0xfefd, epoch: 1, sequence: n, length: 0 }, payload);
        readRecordHeader(rec, 0, h);
        if (opener.open(h, rec.subarray(13)) === null) throw new Error("bench: open failed");
      }
    }
    const us = ((performance.now() - start) * 1000) / n;
    lines.push(
      `AES-128-GCM seal+open, ${fmt(size)} B: ${fmt(us, 1)} µs per record (${fmt(1e6 / us)} records/s)`,
    );
  }
  return lines;
}

/** CPU time of this process's main thread (the client's, in clientThreadFigures), in µs. */
function mainThreadCpuUs(): number {
  const stat = Deno.readTextFileSync(`/proc/self/task/${Deno.pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields 14 and 15 (utime, stime) in clock ticks, 100 a second on Linux
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

/**
 * The client alone: the server runs in a Worker (its own thread), and the client's thread CPU
 * per delivered record is read from /proc. The sender waits on a shared counter (Atomics.waitAsync),
 * so no polling is counted.
 */
async function clientThreadFigures(): Promise<string[]> {
  const shared = new SharedArrayBuffer(8);
  const counts = new Int32Array(shared);
  const worker = new Worker(new URL("./bench_dtls_server.ts", import.meta.url), { type: "module" });
  const next = () => new Promise<Record<string, unknown>>((r) => (worker.onmessage = (e) => r(e.data)));
  let reply = next();
  worker.postMessage({ cmd: "start", shared, identity, psk });
  const { port } = (await reply) as { port: number };
  const client = await connectDtls({ hostname: "127.0.0.1", port, identity, psk });
  client.onDatagram(() => {
    Atomics.add(counts, 1, 1);
    Atomics.notify(counts, 1);
  });
  await new Promise((r) => setTimeout(r, 50));
  const lines: string[] = [];
  for (const size of SIZES) {
    // client → server: this thread seals and sends
    const payload = crypto.getRandomValues(new Uint8Array(size));
    Atomics.store(counts, 0, 0);
    let sent = 0;
    let lost = 0;
    let cpu0 = mainThreadCpuUs();
    const end = performance.now() + SECONDS * 1000;
    while (performance.now() < end) {
      const r = Atomics.load(counts, 0);
      while (sent - lost - Atomics.load(counts, 0) < WINDOW) {
        client.send(payload);
        sent++;
      }
      const w = Atomics.waitAsync(counts, 0, r, 50);
      if ((w.async ? await w.value : w.value) === "timed-out") lost = sent - Atomics.load(counts, 0);
    }
    let n = Atomics.load(counts, 0);
    const up = (mainThreadCpuUs() - cpu0) / Math.max(1, n);
    lines.push(
      `client → server ${fmt(size)} B: ${fmt(n / SECONDS)} records/s, client ${fmt(up, 1)} µs CPU per record`,
    );
    // server → client: this thread receives and opens
    await new Promise((r) => setTimeout(r, 100));
    Atomics.store(counts, 1, 0);
    reply = next();
    cpu0 = mainThreadCpuUs();
    worker.postMessage({ cmd: "send", size, seconds: SECONDS, window: WINDOW });
    await reply;
    n = Atomics.load(counts, 1);
    const down = (mainThreadCpuUs() - cpu0) / Math.max(1, n);
    lines.push(
      `server → client ${fmt(size)} B: ${fmt(n / SECONDS)} records/s, client ${
        fmt(down, 1)
      } µs CPU per record`,
    );
  }
  client.close();
  await client.closed;
  reply = next();
  worker.postMessage({ cmd: "stop" });
  await reply;
  return lines;
}

const raw = await rawFigures();
const dtls = await dtlsFigures();

const fmt = (n: number, d = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const rows = [[
  "direction",
  "payload B",
  "records/s",
  "MB/s",
  "lost",
  "raw UDP rec/s",
  "raw MB/s",
  "DTLS/raw",
  "CPU µs/rec",
  "raw CPU µs/rec",
]];
for (const [name, f] of dtls) {
  const size = Number(name.split(" ")[1]);
  const r = raw.get(`raw ${size}`);
  if (r === undefined) continue;
  const rps = f.records / f.seconds;
  const rawRps = r.records / r.seconds;
  rows.push([
    name.split(" ")[0],
    fmt(size),
    fmt(rps),
    fmt(f.bytes / f.seconds / 1e6, 1),
    fmt(f.lost),
    fmt(rawRps),
    fmt(r.bytes / r.seconds / 1e6, 1),
    `${fmt((rps / rawRps) * 100, 0)} %`,
    fmt(f.cpuUs, 1),
    fmt(r.cpuUs, 1),
  ]);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const r of rows) {
  console.log(r.map((c, i) => (i < 1 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  "));
}
console.log("\nThe client's thread alone (server in a Worker), CPU from /proc per delivered record:");
for (const line of await clientThreadFigures()) console.log(`  ${line}`);
console.log("");
for (const line of cipherFigures()) console.log(line);
console.log(
  `\n${SECONDS} s per figure, ${WINDOW} datagrams in flight at most, both ends in one Deno process.`,
);
