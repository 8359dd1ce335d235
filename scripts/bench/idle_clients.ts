/**
 * Many idle tunnel clients in one process, for the 10 000-session benchmark (scale_10k.ts). Each is
 * what client.ts runs per session (tunnel_open.ts), minus the process and path probes: connectDtls →
 * transport connection with the client's keep-alive (1.5 s, or --keepalive-ms; idle timeout 3×) →
 * HELLO/WELCOME, requests served by the real forwarder (client_forward.ts) to a local origin. Each client's
 * UDP socket is bound to its own 127.x.y.z source address (Linux routes all of 127/8 to lo), so the
 * server's per-address handshake admission — a security feature, kept as is — sees 10 000 addresses
 * the way it would see 10 000 hosts.
 *
 * Commands on stdin, one a line; JSON lines on stdout:
 *   open N   → opens clients until N were tried  {"event":"opened","up":n,"failed":n,"seconds":s,"live":[i...],...}
 *   close    → says GOODBYE on each and exits   {"event":"closed","seconds":s}
 *
 *   deno run -A scripts/bench/idle_clients.ts --server 127.0.0.1:PORT --keys FILE --target http://127.0.0.1:P
 *     [--first I] [--concurrency 64] [--attempts 2] [--keepalive-ms 1500] [--pmtu on|off]
 * FILE: JSON lines {"domain":D,"key":HEX}; client i uses line (first + i) mod lines.
 */
import dgram from "node:dgram";
import { connectDtls } from "../../lib/dtls/client.ts";
import { pskFromApiKey } from "../../lib/dtls/psk.ts";
import { silentLogger } from "../../lib/log/logger.ts";
import { CLIENT_KEEPALIVE_MS } from "../../lib/proxy/tunnel_open.ts";
import { Connection } from "../../lib/transport/connection.ts";
import type { TransportConnection } from "../../lib/transport/types.ts";
import { type ControlChannel, openControl } from "../../lib/proxy/control.ts";
import { handleStream } from "../../lib/proxy/client_forward.ts";
import { VERSION } from "../../lib/config/version.ts";

/** 127.a.b.c for the n-th bind: b and c in 1..250, a from 10 up (10 000 fit in 127.10.0.0/16). */
export function loopbackAddress(n: number): string {
  const c = 1 + (n % 250);
  const b = 1 + (Math.floor(n / 250) % 250);
  const a = 10 + Math.floor(n / 62_500);
  if (a > 254) throw new RangeError(`loopback source address ${n} is past 127.254.250.250`);
  return `127.${a}.${b}.${c}`;
}

/**
 * node-dtls-client binds its socket with `bind()` (no address, so 0.0.0.0); here every such bind
 * takes the next loopback address instead. Bench-only: the library has no option for it.
 */
export function bindEachToOwnLoopback(first: number): void {
  let next = first;
  const proto = dgram.Socket.prototype as unknown as { bind: (...a: unknown[]) => unknown };
  const original = proto.bind;
  proto.bind = function (this: unknown, ...args: unknown[]) {
    if (args.length === 0 || (args.length === 1 && typeof args[0] === "number")) {
      return original.call(this, (args[0] as number | undefined) ?? 0, loopbackAddress(next++));
    }
    return original.apply(this, args);
  };
}

function flags(argv: string[], defaults: Record<string, string>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (m) out[m[1]] = m[2] ?? argv[++i];
  }
  return out;
}

/** VmRSS of a process in kB. */
export function rssKb(pid: number | "self" = "self"): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) : NaN;
}

const emit = (o: Record<string, unknown>) => console.log(JSON.stringify(o));

async function main(): Promise<void> {
  const a = flags(Deno.args, {
    first: "0",
    concurrency: "64",
    attempts: "2",
    "keepalive-ms": String(CLIENT_KEEPALIVE_MS),
    pmtu: "on",
  });
  const keepAliveMs = Number(a["keepalive-ms"]);
  if (!a.server || !a.keys || !a.target) {
    console.error("usage: idle_clients.ts --server HOST:PORT --keys FILE --target URL [--first I]");
    Deno.exit(2);
  }
  const [hostname, portText] = a.server.split(":");
  const keys = Deno.readTextFileSync(a.keys).trim().split("\n").map((l) =>
    JSON.parse(l) as { domain: string; key: string }
  );
  const first = Number(a.first);
  const concurrency = Number(a.concurrency);
  // Addresses: this driver's range starts at its first client (×2 leaves room for retries).
  bindEachToOwnLoopback(first * 2);
  const services = [{ prefix: "/", target: new URL(a.target) }];
  const tunnels: { connection: TransportConnection; control: ControlChannel; index: number }[] = [];
  const errors = new Map<string, number>();
  let failed = 0;
  let dropped = 0;
  /** Domain indices (keys-file lines) of the clients up now. */
  const live = new Set<number>();

  async function one(i: number): Promise<void> {
    const { domain, key } = keys[(first + i) % keys.length];
    const session = await connectDtls({
      hostname,
      port: Number(portText),
      identity: domain,
      psk: pskFromApiKey(key),
      connectTimeoutMs: 3000,
      // The bound: no client refused for more than its first retry.
      maxAttempts: Number(a.attempts),
    });
    const connection = new Connection(session, {
      role: "client",
      logger: silentLogger,
      keepAliveMs,
      idleTimeoutMs: 3 * keepAliveMs,
      // --pmtu off: no 16 KB size probes from the clients (the real client probes, as here by default).
      pmtuDiscovery: a.pmtu !== "off",
    });
    connection.onStream((stream) => {
      void handleStream(stream, { services, hostMode: "preserve", logger: silentLogger });
    });
    let control: ControlChannel;
    try {
      ({ control } = await openControl(connection, { clientVersion: VERSION, services: ["/"] }));
    } catch (e) {
      connection.abort(0, "handshake failed");
      throw e;
    }
    const tunnel = { connection, control, index: first + i };
    tunnels.push(tunnel);
    tunnel.connection.closed.then(() => {
      dropped++;
      live.delete(tunnel.index);
    }, () => {});
    live.add(tunnel.index);
  }

  async function openUpTo(total: number): Promise<void> {
    const started = performance.now();
    const from = tunnels.length + failed;
    let next = from;
    const worker = async () => {
      while (next < total) {
        const i = next++;
        try {
          await one(i);
        } catch (e) {
          failed++;
          const k = (e as Error).message.replace(/\d+/g, "N").slice(0, 120);
          errors.set(k, (errors.get(k) ?? 0) + 1);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, total - from)) }, worker));
    const seconds = (performance.now() - started) / 1000;
    emit({
      event: "opened",
      up: tunnels.length - dropped,
      attempted: total - from,
      failed,
      dropped,
      seconds: Math.round(seconds * 100) / 100,
      rss_kb: rssKb(),
      live: [...live],
      errors: [...errors].map(([message, n]) => ({ message, n })),
    });
  }

  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of Deno.stdin.readable) {
    buffered += decoder.decode(chunk);
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      const open = /^open (\d+)$/.exec(line);
      if (open) await openUpTo(Number(open[1]));
      else if (line === "close") {
        const t0 = performance.now();
        await Promise.all(tunnels.map(async (t) => {
          await t.control.goodbye("benchmark done").catch(() => {});
          t.connection.abort(0, "benchmark done");
        }));
        emit({ event: "closed", seconds: Math.round((performance.now() - t0) / 10) / 100 });
        Deno.exit(0);
      }
    }
  }
  Deno.exit(0);
}

if (import.meta.main) await main();
