/**
 * Memory of idle tunnel sessions, both ends in this process: a DTLS server with the server's
 * transport and control channel, N clients with the client's (connectDtls → connection → HELLO).
 * After a full GC before and after: heap and external bytes per client/server pair. Prints one JSON
 * line. Needs --v8-flags=--expose-gc.
 *   deno run -A --v8-flags=--expose-gc tests/support/session_memory.ts [N]
 */
import { startDtlsServer } from "../../lib/dtls/server.ts";
import { connectDtls } from "../../lib/dtls/client.ts";
import { Connection } from "../../lib/transport/connection.ts";
import type { TransportConnection } from "../../lib/transport/types.ts";
import { acceptControl, type ControlChannel, openControl } from "../../lib/proxy/control.ts";
import { silentLogger } from "../../lib/log/logger.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --v8-flags=--expose-gc");

const n = Number(Deno.args[0] ?? 100);
const psk = new Uint8Array(32).fill(7);
const kept: { connection: TransportConnection; control?: ControlChannel }[] = [];
const server = await startDtlsServer({
  hostname: "127.0.0.1",
  port: 0,
  logger: silentLogger,
  lookupPsk: (identity) => Promise.resolve(identity === "mem.test" ? psk : null),
  // One source address opens them all: its per-address budgets are this test's to lift.
  limits: { helloBurst: 10 * n, helloPerSecond: 10 * n, maxHandshakesPerAddress: 64 },
  onSession(session) {
    const connection = new Connection(session, { role: "server", logger: silentLogger });
    void acceptControl(connection, () => ({
      accept: true,
      sessionId: session.id,
      domain: "mem.test",
      publicUrl: "https://mem.test",
    })).then((r) => {
      if (r.kind === "accepted") kept.push({ connection, control: r.control });
    }, () => {});
  },
});

async function openOne(): Promise<void> {
  const session = await connectDtls({
    hostname: "127.0.0.1",
    port: server.addr.port,
    identity: "mem.test",
    psk,
    maxAttempts: 3,
  });
  const connection = new Connection(session, { role: "client", logger: silentLogger });
  const { control } = await openControl(connection, { clientVersion: "0.0.0", services: ["/"] });
  kept.push({ connection, control });
}

function settle(): Deno.MemoryUsage {
  for (let i = 0; i < 3; i++) gc!();
  return Deno.memoryUsage();
}

// Warm-up: the code paths compiled and module state created before the baseline.
for (let i = 0; i < 5; i++) await openOne();
await new Promise((r) => setTimeout(r, 300));
const before = settle();
for (let i = 0; i < n; i += 8) await Promise.all(Array.from({ length: Math.min(8, n - i) }, openOne));
await new Promise((r) => setTimeout(r, 500));
const after = settle();
console.log(JSON.stringify({
  pairs: n,
  heap_kb_per_pair: Math.round((after.heapUsed - before.heapUsed) / n / 102.4) / 10,
  external_kb_per_pair: Math.round((after.external - before.external) / n / 102.4) / 10,
  server_sessions: server.stats().sessions,
}));
for (const k of kept) k.connection.abort(0, "done");
await server.close();
Deno.exit(0);
