/**
 * Transport benchmark: bulk throughput one way and both ways over plain UDP and over DTLS on loopback,
 * at 0%, 1% and 5% injected loss, and 1 000 small request/response exchanges over 32 concurrent streams.
 * The far end runs in a Worker (its own thread). Prints the raw UDP ceiling measured in the same run.
 *
 *   deno run -A scripts/bench_transport.ts [--quick] [--runs=N]
 *
 * With --runs=N every figure is the best of N runs (a shared machine makes single runs noisy).
 */
import { setImmediate } from "node:timers";
import { connectDtls } from "../lib/dtls/client.ts";
import type { DatagramSession } from "../lib/dtls/session.ts";
import { Connection } from "../lib/transport/connection.ts";
import type { TransportStream } from "../lib/transport/types.ts";
import { UdpSession } from "../lib/transport/udp_session.ts";
import { BENCH_IDENTITY, BENCH_PSK, lossy } from "./bench/transport_common.ts";
import type { PeerRequest } from "./bench/transport_peer.ts";

const MB = 1024 * 1024;
const quick = Deno.args.includes("--quick");
const RUNS = Math.max(1, Number(Deno.args.find((a) => a.startsWith("--runs="))?.slice(7) ?? 1));
const BULK_BYTES = quick ? 32 * MB : 128 * MB;
/** Every measurement stops here, finished or not. */
const RUN_LIMIT_MS = quick ? 8_000 : 20_000;
const block = new Uint8Array(64 * 1024).map((_, i) => (i * 7) & 0xff);

function startPeer(): { worker: Worker; ask: (req: PeerRequest) => Promise<Record<string, number>> } {
  const worker = new Worker(new URL("./bench/transport_peer.ts", import.meta.url), {
    type: "module",
  });
  const ask = (req: PeerRequest) =>
    new Promise<Record<string, number>>((resolve) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.postMessage(req);
    });
  return { worker, ask };
}

async function rawUdpCeiling(): Promise<number> {
  const { worker, ask } = startPeer();
  const { port } = await ask({ kind: "udp_sink" });
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const target: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port };
  const datagram = new Uint8Array(16384);
  const t0 = performance.now();
  while (performance.now() - t0 < 2_000) {
    const batch: Promise<number>[] = [];
    for (let i = 0; i < 32; i++) batch.push(conn.send(datagram, target));
    await Promise.all(batch);
  }
  const elapsed = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 100));
  const { bytes } = await ask({ kind: "udp_sink_stop" });
  conn.close();
  worker.terminate();
  return bytes / MB / (elapsed / 1000);
}

/** DTLS records of 16 KiB sent as fast as the client session takes them: the ceiling for the tunnel. */
async function rawDtlsCeiling(): Promise<number> {
  const { worker, ask } = startPeer();
  const { port } = await ask({ kind: "dtls_sink" });
  const session = await connectDtls({
    hostname: "127.0.0.1",
    port,
    identity: BENCH_IDENTITY,
    psk: BENCH_PSK,
  });
  const datagram = new Uint8Array(16384);
  const t0 = performance.now();
  while (performance.now() - t0 < 2_000) {
    for (let i = 0; i < 4; i++) session.send(datagram);
    await new Promise((r) => setImmediate(r));
  }
  const elapsed = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 200));
  const { bytes } = await ask({ kind: "udp_sink_stop" });
  session.close();
  worker.terminate();
  return bytes / MB / (elapsed / 1000);
}

function header(cmd: string, size: number): Uint8Array {
  const h = new Uint8Array(9);
  h[0] = cmd.charCodeAt(0);
  new DataView(h.buffer).setFloat64(1, size);
  return h;
}

async function upload(conn: Connection, size: number, deadline: number): Promise<number> {
  const s = await conn.openStream();
  const w = s.writable.getWriter();
  await w.write(header("S", size));
  let sent = 0;
  while (sent < size && performance.now() < deadline) {
    const n = Math.min(block.length, size - sent);
    await w.write(block.subarray(0, n));
    sent += n;
  }
  await w.close();
  await s.readable.pipeTo(new WritableStream()); // the peer closes after reading everything
  return sent;
}

async function download(conn: Connection, size: number, deadline: number): Promise<number> {
  const s = await conn.openStream();
  const w = s.writable.getWriter();
  await w.write(header("G", size));
  await w.close();
  let got = 0;
  const reader = s.readable.getReader();
  while (performance.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    got += value.length;
  }
  if (got < size) s.reset(1);
  return got;
}

async function exchange(conn: Connection): Promise<void> {
  const s: TransportStream = await conn.openStream();
  const w = s.writable.getWriter();
  await w.write(header("E", 200));
  await w.write(block.subarray(0, 300));
  await w.close();
  let n = 0;
  for await (const c of s.readable) n += c.length;
  if (n !== 200) throw new Error(`short response: ${n}`);
}

async function connect(transport: "udp" | "dtls", lossRate: number) {
  const { worker, ask } = startPeer();
  const { port } = await ask({ kind: "serve", transport, lossRate, seed: 2 });
  let session: DatagramSession;
  if (transport === "udp") {
    const udp = new UdpSession({ hostname: "127.0.0.1", port: 0, remote: { hostname: "127.0.0.1", port } });
    udp.send(new Uint8Array([0])); // tells the peer our address; it is not a transport packet and is dropped
    session = udp;
  } else {
    session = await connectDtls({ hostname: "127.0.0.1", port, identity: BENCH_IDENTITY, psk: BENCH_PSK });
  }
  const conn = new Connection(lossy(session, lossRate, 1), { role: "client" });
  return {
    conn,
    async close() {
      conn.abort(0, "bench over");
      await conn.closed;
      worker.terminate();
    },
  };
}

async function requestResponse(conn: Connection): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < 1000) {
      next++;
      await exchange(conn);
    }
  }));
  return performance.now() - t0;
}

/** One connection per scenario: a cold transfer, a warm one, both ways at once, then request/response. */
interface Figures {
  cold: number;
  oneWay: number;
  both: number;
  up: number;
  rrMs: number;
  note: string;
}

async function scenario(transport: "udp" | "dtls", lossRate: number): Promise<Figures> {
  const size = lossRate >= 0.05 ? BULK_BYTES / 2 : BULK_BYTES;
  const { conn, close } = await connect(transport, lossRate);
  const timed = async <T>(f: (deadline: number) => Promise<T>): Promise<[T, number]> => {
    const t0 = performance.now();
    const r = await f(t0 + RUN_LIMIT_MS);
    return [r, performance.now() - t0];
  };
  const [cold, coldMs] = await timed((d) => upload(conn, size / 4, d));
  const [warm, warmMs] = await timed((d) => upload(conn, size, d));
  const [[up, down], bothMs] = await timed((d) =>
    Promise.all([upload(conn, size / 2, d), download(conn, size / 2, d)])
  );
  const rrMs = await requestResponse(conn);
  const st = conn.stats();
  await close();
  const rate = (bytes: number, ms: number) => bytes / MB / (ms / 1000);
  return {
    cold: rate(cold, coldMs),
    oneWay: rate(warm, warmMs),
    both: rate(up + down, bothMs),
    up: rate(up, bothMs),
    rrMs,
    note: `srtt ${
      st.smoothedRttMs.toFixed(2)
    } ms, lost ${st.packetsLost}/${st.packetsSent}, PTOs ${st.probeTimeouts}`,
  };
}

console.log(
  `raw UDP ceiling (16 KiB datagrams, one way, to a worker): ${(await rawUdpCeiling()).toFixed(1)} MB/s`,
);
console.log(
  `raw DTLS ceiling (16 KiB records delivered, one way, to a worker): ${
    (await rawDtlsCeiling()).toFixed(1)
  } MB/s`,
);
/** Best of RUNS for each figure. */
async function best(transport: "udp" | "dtls", lossRate: number): Promise<string> {
  let b: Figures | undefined;
  for (let i = 0; i < RUNS; i++) {
    const f = await scenario(transport, lossRate);
    b = b === undefined ? f : {
      cold: Math.max(b.cold, f.cold),
      oneWay: Math.max(b.oneWay, f.oneWay),
      both: Math.max(b.both, f.both),
      up: f.both > b.both ? f.up : b.up,
      rrMs: Math.min(b.rrMs, f.rrMs),
      note: f.oneWay > b.oneWay ? f.note : b.note,
    };
  }
  const mbs = (x: number) => `${x.toFixed(1).padStart(6)} MB/s`;
  return [
    `${transport.padEnd(4)} ${(lossRate * 100).toFixed(0).padStart(2)}%`,
    `cold ${mbs(b!.cold)}`,
    `one way ${mbs(b!.oneWay)}`,
    `both ways ${mbs(b!.both)} (${mbs(b!.up)} up)`,
    `1000 req/resp ${b!.rrMs.toFixed(0).padStart(4)} ms`,
    `| ${b!.note}`,
  ].join("  ");
}

console.log(
  `best of ${RUNS} run(s); one way = ${
    BULK_BYTES / MB
  } MB (half at 5% loss), cold = the first quarter of that on a new connection`,
);
for (const transport of ["udp", "dtls"] as const) {
  for (const loss of [0, 0.01, 0.05]) {
    try {
      console.log(await best(transport, loss));
    } catch (e) {
      console.log(`${transport} ${loss * 100}%: failed: ${e instanceof Error ? e.stack : e}`);
    }
  }
}
