/**
 * Opens N idle tunnel sessions to a HopGate server from this one process, with the library:
 * connectDtls → new Connection → openControl (HELLO/WELCOME), at most `concurrency` handshakes
 * at a time. Prints JSON lines on stdout:
 *
 *   {"event":"progress","opened":n,"failed":n}        now and then
 *   {"event":"opened","opened":n,"failed":n,"seconds":s,"rss_kb_before":n,"rss_kb_after":n,"errors":[...]}
 *   {"event":"closed","seconds":s}                     after stdin reaches EOF or a line "close"
 *
 *   deno run -A scripts/bench/sessions.ts --server 127.0.0.1:PORT --domain D --key HEX [--count 1000] [--concurrency 50]
 *
 * Each session's socket is bound to its own 127.x.y.z source address, as real clients come from their
 * own addresses: from one address, the server's per-address ClientHello budget (a flood defence) refused
 * a few percent of 1 000 handshakes.
 */
import { connectDtls } from "../../lib/dtls/client.ts";
import { bindEachToOwnLoopback } from "./idle_clients.ts";
import { Connection } from "../../lib/transport/connection.ts";
import { type ControlChannel, openControl } from "../../lib/proxy/control.ts";
import { VERSION } from "../../lib/config/version.ts";

export function rssKb(pid: number | "self" = "self"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) : NaN;
}

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

interface Open {
  connection: Connection;
  control: ControlChannel;
}

/** `--name value` pairs (jsr:@std/cli is not reachable here). */
function flags(argv: string[], defaults: Record<string, string>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) continue;
    out[m[1]] = m[2] ?? argv[++i];
  }
  return out;
}

function within(p: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([p.catch(() => {}), new Promise((r) => timer = setTimeout(r, ms))]).finally(() =>
    clearTimeout(timer)
  );
}

const emit = (o: Record<string, unknown>) => console.log(JSON.stringify(o));

async function main(): Promise<void> {
  const args = flags(Deno.args, { count: "1000", concurrency: "50" });
  if (!args.server || !args.domain || !args.key) {
    console.error("usage: sessions.ts --server HOST:PORT --domain D --key HEX [--count N] [--concurrency C]");
    Deno.exit(2);
  }
  const [hostname, portText] = args.server.split(":");
  const port = Number(portText);
  const count = Number(args.count);
  const concurrency = Number(args.concurrency);
  const psk = hexToBytes(args.key);
  bindEachToOwnLoopback(0);
  const open: Open[] = [];
  const errors = new Map<string, number>();
  let failed = 0;
  let next = 0;
  const rssBefore = rssKb();
  const started = performance.now();
  let lastProgress = started;

  async function one(): Promise<void> {
    const session = await connectDtls({
      hostname,
      port,
      identity: args.domain!,
      psk,
      connectTimeoutMs: 3000,
      maxAttempts: 3,
    });
    const connection = new Connection(session, { role: "client" });
    connection.onStream((s) => s.reset(0));
    try {
      const { control } = await openControl(connection, { clientVersion: VERSION, services: ["/"] });
      open.push({ connection, control });
    } catch (e) {
      connection.abort(0, "handshake failed");
      throw e;
    }
  }

  async function worker(): Promise<void> {
    while (next < count) {
      next++;
      try {
        await one();
      } catch (e) {
        failed++;
        const key = (e as Error).message.slice(0, 120);
        errors.set(key, (errors.get(key) ?? 0) + 1);
      }
      const now = performance.now();
      if (now - lastProgress > 1000) {
        lastProgress = now;
        emit({ event: "progress", opened: open.length, failed });
      }
    }
  }

  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const seconds = (performance.now() - started) / 1000;
  // Let the last handshakes' garbage go and the timers settle before the figure.
  await new Promise((r) => setTimeout(r, 1000));
  emit({
    event: "opened",
    opened: open.length,
    failed,
    seconds: Math.round(seconds * 100) / 100,
    rss_kb_before: rssBefore,
    rss_kb_after: rssKb(),
    errors: [...errors].map(([message, n]) => ({ message, n })),
  });

  // Wait for "close" or EOF on stdin.
  const decoder = new TextDecoder();
  for await (const chunk of Deno.stdin.readable) {
    if (decoder.decode(chunk).includes("close")) break;
  }
  const closing = performance.now();
  await Promise.all(open.map(async ({ connection, control }) => {
    await within(control.goodbye("benchmark done"), 2000);
    await within(connection.close(0, "benchmark done"), 3000);
  }));
  emit({ event: "closed", seconds: Math.round((performance.now() - closing) / 10) / 100 });
  Deno.exit(0);
}

if (import.meta.main) await main();
