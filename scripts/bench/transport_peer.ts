/**
 * The far end of scripts/bench_transport.ts, run in a Worker so each side has its own thread, as two
 * machines would: a raw UDP sink, or a transport server over UDP or DTLS that sinks, sources or answers.
 */
/// <reference lib="deno.worker" />
import { startDtlsServer } from "../../lib/dtls/server.ts";
import type { DatagramSession } from "../../lib/dtls/session.ts";
import { Connection } from "../../lib/transport/connection.ts";
import type { TransportStream } from "../../lib/transport/types.ts";
import { UdpSession } from "../../lib/transport/udp_session.ts";
import { BENCH_IDENTITY, BENCH_PSK, lossy } from "./transport_common.ts";

export type PeerRequest =
  | { kind: "udp_sink" }
  | { kind: "udp_sink_stop" }
  | { kind: "dtls_sink" }
  | { kind: "serve"; transport: "udp" | "dtls"; lossRate: number; seed: number };

const block = new Uint8Array(64 * 1024).map((_, i) => (i * 131) & 0xff);

async function readHeader(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<[string, number, Uint8Array]> {
  let buf = new Uint8Array(0);
  while (buf.length < 9) {
    const { value, done } = await reader.read();
    if (done) throw new Error("stream ended before its header");
    const next = new Uint8Array(buf.length + value.length);
    next.set(buf);
    next.set(value, buf.length);
    buf = next;
  }
  const size = new DataView(buf.buffer, buf.byteOffset + 1, 8).getFloat64(0);
  return [String.fromCharCode(buf[0]), size, buf.subarray(9)];
}

async function serveStream(s: TransportStream): Promise<void> {
  const reader = s.readable.getReader();
  const writer = s.writable.getWriter();
  const [cmd, size] = await readHeader(reader);
  if (cmd === "G") {
    for (let sent = 0; sent < size;) {
      const n = Math.min(block.length, size - sent);
      await writer.write(block.subarray(0, n));
      sent += n;
    }
  } else {
    while (!(await reader.read()).done) { /* sink */ }
  }
  if (cmd === "E") await writer.write(block.subarray(0, size));
  await writer.close();
}

let sinkBytes = 0;
let sinkConn: Deno.DatagramConn | undefined;

self.onmessage = async (e: MessageEvent<PeerRequest>) => {
  const req = e.data;
  if (req.kind === "udp_sink") {
    sinkConn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    self.postMessage({ port: (sinkConn.addr as Deno.NetAddr).port });
    const buf = new Uint8Array(65536);
    try {
      for (;;) {
        const [d] = await sinkConn.receive(buf);
        sinkBytes += d.length;
      }
    } catch { /* closed */ }
    return;
  }
  if (req.kind === "dtls_sink") {
    const server = await startDtlsServer({
      hostname: "127.0.0.1",
      port: 0,
      lookupPsk: (id) => Promise.resolve(id === BENCH_IDENTITY ? BENCH_PSK : null),
      onSession: (s) => s.onDatagram((d) => (sinkBytes += d.length)),
    });
    self.postMessage({ port: server.addr.port });
    return;
  }
  if (req.kind === "udp_sink_stop") {
    sinkConn?.close();
    self.postMessage({ bytes: sinkBytes });
    sinkBytes = 0;
    return;
  }
  const attach = (session: DatagramSession) => {
    const conn = new Connection(lossy(session, req.lossRate, req.seed), { role: "server" });
    conn.onStream((s) => serveStream(s).catch(() => {}));
  };
  if (req.transport === "udp") {
    const session = new UdpSession({ hostname: "127.0.0.1", port: 0 });
    self.postMessage({ port: session.localAddress.port });
    await session.connected;
    attach(session);
  } else {
    const server = await startDtlsServer({
      hostname: "127.0.0.1",
      port: 0,
      lookupPsk: (id) => Promise.resolve(id === BENCH_IDENTITY ? BENCH_PSK : null),
      onSession: attach,
    });
    self.postMessage({ port: server.addr.port });
  }
};
