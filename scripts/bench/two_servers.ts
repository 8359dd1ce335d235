/**
 * Requests per second through two servers sharing one client versus one (issue 13): a private
 * PostgreSQL, two servers on it, one client.ts with a session to each (HOP_CLIENT_SERVER_ADDR lists
 * both), the bench origin's 1 KiB /small. wrk runs against server 1 alone, then against both at
 * once (half the connections each); prints both rates and their ratio. On one machine every
 * process shares the same cores, so the ratio says what a second server adds when the client (or
 * the machine) is not the bottleneck, and shows it when it is.
 *   deno run -A scripts/bench/two_servers.ts [--seconds 5] [--connections 32]
 */
import { startPostgres } from "../postgres.ts";
import { follow, registerDomains, SECRET_HEX, waitFor } from "./scale.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && Deno.args[i + 1] ? Deno.args[i + 1] : fallback;
}

interface Proc {
  child: Deno.ChildProcess;
  lines: Record<string, unknown>[];
}

function spawn(entry: string, env: Record<string, string>, args: string[] = []): Proc {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}${entry}`, ...args],
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: Deno.env.get("HOME") ?? "/tmp", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines: Record<string, unknown>[] = [];
  follow(child.stdout, (o) => {
    if (lines.length < 1000) lines.push(o);
  });
  return { child, lines };
}

/** wrk's requests per second (and non-2xx count) against one server's plain HTTP port. */
async function wrk(port: number, host: string, connections: number, seconds: number) {
  const out = await new Deno.Command("wrk", {
    args: [
      "-t1",
      `-c${connections}`,
      `-d${seconds}s`,
      "-H",
      `Host: ${host}`,
      `http://127.0.0.1:${port}/small`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const errors = /Socket errors:.*/.exec(text)?.[0] ?? "";
  return { rps, non2xx, errors };
}

async function main(): Promise<void> {
  const seconds = Number(flag("seconds", "5"));
  const connections = Number(flag("connections", "32"));
  const deadline = setTimeout(() => {
    console.error("two_servers: 3 minutes passed; stopping");
    Deno.exit(3);
  }, 180_000);
  const pg = await startPostgres();
  const work = await Deno.makeTempDir({ prefix: "hopgate-two-" });
  const procs: Proc[] = [];
  try {
    await registerDomains(pg.dsn, 1, `${work}/keys.jsonl`);
    const { domain, key } = JSON.parse(Deno.readTextFileSync(`${work}/keys.jsonl`).trim());
    const servers = [1, 2].map((i) => {
      const p = spawn("server.ts", {
        HOP_SERVER_DOMAIN: "hop.scale.test",
        HOP_ADMIN_API_KEY: "bench-admin-key-0123456789abcdef",
        HOP_SERVER_HTTP_LISTEN: "127.0.0.1:0",
        HOP_SERVER_HTTPS_LISTEN: "127.0.0.1:0",
        HOP_SERVER_DTLS_LISTEN: "127.0.0.1:0",
        HOP_SERVER_METRICS_LISTEN: "127.0.0.1:0",
        HOP_SERVER_TLS_MODE: "off",
        HOP_LOG_LEVEL: "info",
        HOP_LOG_FORMAT: "json",
        HOP_DATA_DIR: `${work}/data${i}`,
        HOP_DB_DSN: pg.dsn,
        HOP_SECRET_KEY: SECRET_HEX,
      });
      procs.push(p);
      return p;
    });
    const origin = spawn("scripts/bench/origin.ts", {});
    procs.push(origin);
    const ready = await Promise.all(
      servers.map((s) =>
        waitFor(() => s.lines.find((l) => l.msg === "server ready"), 30_000, "server ready")
      ),
    ).catch(() => undefined);
    if (ready === undefined) throw new Error("servers did not report ready");
    const { port: originPort } = await waitFor(
      () => origin.lines.find((l) => l.origin === "ready"),
      10_000,
      "origin",
    )
      .then((l) => ({ port: Number(l.port) }));
    const dtls = ready.map((r) => `127.0.0.1:${String(r.dtls).split(":").pop()}`);
    const http = ready.map((r) => Number(String(r.http).split(":").pop()));
    const client = spawn("client.ts", {
      HOP_CLIENT_SERVER_ADDR: dtls.join(","),
      HOP_CLIENT_DOMAIN: domain,
      HOP_CLIENT_API_KEY: key,
      HOP_CLIENT_LOCAL_TARGET: `127.0.0.1:${originPort}`,
      HOP_CLIENT_INSPECT_LISTEN: "off",
      HOP_LOG_FORMAT: "json",
      HOP_LOG_LEVEL: "info",
    });
    procs.push(client);
    await waitFor(
      () => client.lines.filter((l) => l.msg === "client ready").length >= 2 ? true : undefined,
      30_000,
      "a client session to each server",
    );
    // Warm-up through each, then the measured runs.
    for (const port of http) await wrk(port, domain, 4, 1);
    const one = await wrk(http[0], domain, connections, seconds);
    const both = await Promise.all(http.map((port) => wrk(port, domain, connections / 2, seconds)));
    const sum = both[0].rps + both[1].rps;
    console.log(`one server:  ${Math.round(one.rps)} req/s (${one.non2xx} non-2xx) ${one.errors}`);
    console.log(
      `two servers: ${Math.round(sum)} req/s (${Math.round(both[0].rps)} + ${Math.round(both[1].rps)}; ${
        both[0].non2xx + both[1].non2xx
      } non-2xx) ${both[0].errors} ${both[1].errors}`,
    );
    console.log(
      `ratio two/one: ${(sum / one.rps).toFixed(2)} (${connections} connections, ${seconds} s each)`,
    );
  } finally {
    for (const p of procs) {
      try {
        p.child.kill("SIGTERM");
      } catch { /* gone */ }
      await p.child.status;
    }
    await pg.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
    clearTimeout(deadline);
  }
}

if (import.meta.main) await main();
