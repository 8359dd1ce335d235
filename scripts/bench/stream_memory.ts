/**
 * Memory per idle stream: one connection pair over an in-memory link, the server opens N streams and
 * leaves each with 200 bytes in flight, the client holds them; heap growth ÷ N (both ends together).
 *
 *   deno run -A --v8-flags=--expose-gc scripts/bench/stream_memory.ts [N]
 */
import { Connection } from "../../lib/transport/connection.ts";
import { createMemoryLink } from "../../lib/testing/memory_link.ts";
const N = Number(Deno.args[0] ?? 2000);
const link = createMemoryLink({});
const a = new Connection(link.a, { role: "client", maxIncomingStreams: 20000 });
const b = new Connection(link.b, { role: "server", maxIncomingStreams: 20000 });
const held: unknown[] = [];
a.onStream((s) => {
  held.push(s);
  s.read({ data() {}, end() {}, error() {} });
});
const gc = (globalThis as { gc?: () => void }).gc;
await new Promise((r) => setTimeout(r, 100));
gc?.();
const before = Deno.memoryUsage().heapUsed;
const streams = [];
for (let i = 0; i < N; i++) {
  const s = await b.openStream();
  s.write(new Uint8Array(200));
  streams.push(s);
}
await new Promise((r) => setTimeout(r, 1000));
gc?.();
gc?.();
const after = Deno.memoryUsage().heapUsed;
console.log(
  `${N} idle streams (both ends): ${held.length} accepted, ${
    ((after - before) / N / 1024).toFixed(2)
  } kB per stream pair`,
);
Deno.exit(0);
