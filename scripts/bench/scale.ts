/**
 * Idle tunnel sessions per server (issue 13): one server on a private PostgreSQL, N idle sessions
 * opened from one process with the library (scripts/bench/sessions.ts, `concurrency` handshakes at
 * a time). Per N: handshakes per second at start-up, sessions refused (after the dialler's retries),
 * the server's RSS before and after → kB per session, and the rows in the cluster's sessions table.
 *   deno run -A scripts/bench/scale.ts [--counts 1000,10000] [--concurrency 50]
 */
import postgres from "postgres";
import { startPostgres } from "../postgres.ts";
import { rssKb } from "./sessions.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const ADMIN = "bench-admin-key-0123456789abcdef";
const DOMAIN = "sessions.bench.test";

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && Deno.args[i + 1] ? Deno.args[i + 1] : fallback;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads JSON lines from a process's stdout, calling `onLine` for each. */
function follow(stream: ReadableStream<Uint8Array>, onLine: (o: Record<string, unknown>) => void) {
  (async () => {
    let buffered = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          onLine(JSON.parse(line));
        } catch { /* not JSON */ }
      }
    }
  })().catch(() => {});
}

function waitFor<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const end = Date.now() + timeoutMs;
    const tick = () => {
      const v = check();
      if (v !== undefined) resolve(v);
      else if (Date.now() > end) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 100);
    };
    tick();
  });
}

async function main(): Promise<void> {
  const counts = flag("counts", "1000,10000").split(",").map(Number);
  const concurrency = flag("concurrency", "50");
  const pg = await startPostgres();
  const dataDir = await Deno.makeTempDir({ prefix: "hopgate-scale-" });
  const sql = postgres(pg.dsn, { max: 1, onnotice: () => {} });
  const server = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}server.ts`],
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      HOP_SERVER_DOMAIN: "hop.bench.test",
      HOP_ADMIN_API_KEY: ADMIN,
      HOP_SERVER_HTTP_LISTEN: "127.0.0.1:0",
      HOP_SERVER_HTTPS_LISTEN: "127.0.0.1:0",
      HOP_SERVER_DTLS_LISTEN: "127.0.0.1:0",
      HOP_SERVER_TLS_MODE: "off",
      // Debug mode: the admin API answers on 127.0.0.1 (fetch cannot send another Host).
      HOP_SERVER_DEBUG: "true",
      HOP_LOG_LEVEL: "info",
      HOP_LOG_FORMAT: "json",
      HOP_DATA_DIR: dataDir,
      HOP_DB_DSN: pg.dsn,
      HOP_SECRET_KEY: "5e".repeat(32),
    },
    clearEnv: true,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines: Record<string, unknown>[] = [];
  // Only the ready line and what is not routine are kept: 10 000 sessions log 10 000 lines.
  const notable = new Map<string, number>();
  follow(server.stdout, (o) => {
    if (o.msg === "server ready") lines.push(o);
    else if (o.level !== "info" || ["domains", "notify", "cluster"].includes(String(o.component))) {
      const k = `${o.level} ${o.component}: ${o.msg}`;
      notable.set(k, (notable.get(k) ?? 0) + 1);
    }
  });
  const results: Record<string, unknown>[] = [];
  try {
    const ready = await waitFor(() => lines.find((l) => l.msg === "server ready"), 30_000, "server ready");
    const base = `http://${ready.http}`;
    const dtls = Number(String(ready.dtls).split(":").pop());
    const res = await fetch(`${base}/api/v1/admin/domains`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ domain: DOMAIN }),
    });
    const key = (await res.json()).client_api_key as string;
    for (const n of counts) {
      await sleep(2000);
      const before = rssKb(server.pid);
      const driver = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          `${ROOT}scripts/bench/sessions.ts`,
          "--server",
          `127.0.0.1:${dtls}`,
          "--domain",
          DOMAIN,
          "--key",
          key,
          "--count",
          String(n),
          "--concurrency",
          concurrency,
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const events: Record<string, unknown>[] = [];
      follow(driver.stdout, (o) => events.push(o));
      const opened = await waitFor(
        () => events.find((e) => e.event === "opened"),
        60_000 + n * 100,
        `${n} sessions`,
      );
      await sleep(2000);
      const after = rssKb(server.pid);
      const [{ count: rows }] = await sql`select count(*)::int as count from sessions`;
      const readyz = await (await fetch(`${base}/readyz`)).json();
      const row = {
        sessions: n,
        opened: opened.opened,
        refused: opened.failed,
        seconds: opened.seconds,
        handshakes_per_s: Math.round(Number(opened.opened) / Number(opened.seconds)),
        server_rss_mb_before: Math.round(before / 1024),
        server_rss_mb_after: Math.round(after / 1024),
        kb_per_session: Math.round((after - before) / Number(opened.opened)),
        server_counts: readyz.sessions,
        session_rows: rows,
        errors: opened.errors,
      };
      results.push(row);
      console.log(JSON.stringify(row));
      const w = driver.stdin.getWriter();
      await w.write(new TextEncoder().encode("close\n"));
      await w.close().catch(() => {});
      await driver.status;
      // Let the server see every session go before the next round.
      const end = Date.now() + 60_000;
      while (Date.now() < end) {
        const r = await (await fetch(`${base}/readyz`)).json();
        if (r.sessions === 0) break;
        await sleep(500);
      }
    }
  } finally {
    try {
      server.kill("SIGTERM");
    } catch { /* gone */ }
    await server.status;
    await sql.end({ timeout: 1 }).catch(() => {});
    await pg.stop();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
  for (const [line, n] of notable) console.log(`server log: ${n} × ${line}`.slice(0, 240));
  for (const r of results) {
    console.log(
      `${r.sessions} idle sessions: ${r.opened} opened in ${r.seconds} s (${r.handshakes_per_s} handshakes/s, ${r.refused} refused), ` +
        `server RSS ${r.server_rss_mb_before} → ${r.server_rss_mb_after} MB = ${r.kb_per_session} kB/session; ` +
        `${r.session_rows} rows in the sessions table`,
    );
  }
}

if (import.meta.main) await main();
