/**
 * Plain HTTP/1.1 requests/s: the front (Deno.listen carrier), the same driver on node:net, and Deno.serve, same handler (1 KiB body):
 * `deno run -A tests/support/front_bench.ts` (needs wrk). Figures, not a test.
 */
import net from "node:net";
import { latin1Bytes } from "../../lib/protocol/body.ts";
import { socketCarrier } from "../../lib/proxy/carrier.ts";
import { startHttpFront } from "../../lib/proxy/front.ts";
import { frontLimits } from "../../lib/proxy/front_limits.ts";
import { systemClock } from "../../lib/log/clock.ts";
import { serveHttp1 } from "../../lib/proxy/http1/connection.ts";
import type { FrontHandler } from "../../lib/proxy/front_types.ts";

const BODY = latin1Bytes("x".repeat(1024));
const handler: FrontHandler = (_req, res) => {
  res.head(200, "OK", [["Content-Type", "text/plain"], ["Content-Length", "1024"]]);
  res.body.write(BODY);
  res.body.end(null);
};
const limits = frontLimits();

async function serve(kind: string): Promise<{ port: number; stop(): void }> {
  if (kind === "deno-serve") {
    const s = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response(BODY as Uint8Array<ArrayBuffer>),
    );
    return { port: s.addr.port, stop: () => s.shutdown() };
  }
  if (kind === "node-net") {
    const srv = net.createServer((sock) => {
      sock.setNoDelay(true);
      serveHttp1(socketCarrier(sock, sock.remoteAddress ?? "", sock.remotePort ?? 0), {
        handler,
        proto: "http",
        limits,
        clock: systemClock,
      });
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    return { port: (srv.address() as net.AddressInfo).port, stop: () => srv.close() };
  }
  const front = await startHttpFront({ listen: { hostname: "127.0.0.1", port: 0 }, handler });
  return { port: front.addr.port, stop: () => front.close() };
}

const kind = Deno.args[0];
if (kind) {
  const s = await serve(kind);
  console.log(s.port);
  await new Promise(() => {});
}
for (const k of ["front", "node-net", "deno-serve"]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, k],
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const port = new TextDecoder().decode((await reader.read()).value).trim();
  const wrk = await new Deno.Command("wrk", { args: ["-t2", "-c32", "-d5s", `http://127.0.0.1:${port}/`] })
    .output();
  const out = new TextDecoder().decode(wrk.stdout);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1];
  const lat = /Latency\s+(\S+)/.exec(out)?.[1];
  const usage = await Deno.readTextFile(`/proc/${child.pid}/stat`).then((s) => s.split(" "));
  const cpuTicks = Number(usage[13]) + Number(usage[14]);
  const reqs = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  console.log(
    `${k.padEnd(12)} ${rps} req/s  avg latency ${lat}  server CPU ${
      (cpuTicks * 10_000 / Math.max(reqs, 1)).toFixed(1)
    } µs/req`,
  );
  child.kill();
  await child.status;
  reader.releaseLock();
}
