/**
 * Idle RSS of the server (embedded PGlite on a first start and a restart, or PostgreSQL) and of the
 * client: starts each as a process, waits for its ready line, reads VmRSS from /proc 2 s later
 * (IDLE_RSS_WAIT_MS).
 *   deno run -A scripts/bench/idle_rss.ts [runs] [--pglite-only | --client-only]
 * Diagnostics: IDLE_RSS_SMAPS_DIR=dir copies each measured process's /proc/PID/smaps there (what the RSS
 * is made of, mapping by mapping); IDLE_RSS_CLIENT_ENTRY measures another client entrypoint (e.g. a
 * bundle); HOP_RECORD_CIPHER and HOP_CLIENT_INSPECT_LISTEN are passed on to the client.
 */
import { startPostgres } from "../postgres.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
/** Extra V8 flags for the measured processes, e.g. IDLE_RSS_V8_FLAGS=--liftoff-only. */
const V8_FLAGS = Deno.env.get("IDLE_RSS_V8_FLAGS") ? [`--v8-flags=${Deno.env.get("IDLE_RSS_V8_FLAGS")}`] : [];
/**
 * The client's deno run flags: by default those of `deno task client` and `deno task compile`
 * (deno.json: --no-code-cache); IDLE_RSS_CLIENT_FLAGS replaces them (e.g. "" for none).
 */
const CLIENT_FLAGS = (Deno.env.get("IDLE_RSS_CLIENT_FLAGS") ?? "--no-code-cache").split(" ").filter((f) =>
  f !== ""
);
/**
 * How long after the ready line RSS is read (IDLE_RSS_WAIT_MS, default 2000). Longer waits let V8's
 * memory reducer collect the start-up garbage, as it does in a process left idle.
 */
const IDLE_WAIT_MS = Number(Deno.env.get("IDLE_RSS_WAIT_MS") ?? 2000);
/** Servers on PostgreSQL need a shared HOP_SECRET_KEY (it seals the client keys). */
const BENCH_SECRET = "5e".repeat(32);

interface Sample {
  rssMb: number;
  readyMs: number;
  startupMs: number;
}

function rssMb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return Math.round(kb / 1024);
}

/** Spawns `entry` with env, waits for a line whose msg matches, then samples RSS after 2 s. */
async function sample(
  entry: string,
  env: Record<string, string>,
  readyMsg: string,
  keep = false,
): Promise<{ sample: Sample; ready: Record<string, unknown>; stop: () => Promise<void> }> {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...V8_FLAGS,
      ...(entry !== "server.ts" ? CLIENT_FLAGS : []),
      "--config",
      `${ROOT}deno.json`,
      `${ROOT}${entry}`,
    ],
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: Deno.env.get("HOME") ?? "/tmp", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "null",
    cwd: Deno.makeTempDirSync(),
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  let ready: Record<string, unknown> | undefined;
  const deadline = setTimeout(() => child.kill("SIGKILL"), 60_000);
  while (!ready) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${entry} exited before "${readyMsg}"`);
    buffered += value;
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      try {
        const parsed = JSON.parse(line);
        if (parsed.msg === readyMsg) ready = parsed;
      } catch { /* not JSON */ }
    }
  }
  const readyMs = performance.now() - t0;
  // Keep draining stdout so the child never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })().catch(() => {});
  await new Promise((r) => setTimeout(r, IDLE_WAIT_MS));
  const rss = rssMb(child.pid);
  const dump = Deno.env.get("IDLE_RSS_SMAPS_DIR");
  if (dump) Deno.copyFileSync(`/proc/${child.pid}/smaps`, `${dump}/${entry}.${child.pid}.smaps`);
  clearTimeout(deadline);
  const stop = async () => {
    child.kill("SIGTERM");
    await child.status;
  };
  if (!keep) await stop();
  return {
    sample: { rssMb: rss, readyMs: Math.round(readyMs), startupMs: Number(ready.startup_ms ?? 0) },
    ready,
    stop,
  };
}

const serverEnv = (dataDir: string, extra: Record<string, string> = {}) => ({
  HOP_SERVER_DOMAIN: "hop.test",
  HOP_ADMIN_API_KEY: "bench-admin-key-0123456789abcdef",
  HOP_SERVER_HTTP_LISTEN: "127.0.0.1:0",
  HOP_SERVER_HTTPS_LISTEN: "127.0.0.1:0",
  HOP_SERVER_DTLS_LISTEN: "127.0.0.1:0",
  HOP_SERVER_TLS_MODE: "off",
  HOP_DATA_DIR: dataDir,
  // Any free port: the default 9100 may be taken by another server on this machine.
  HOP_SERVER_METRICS_LISTEN: "127.0.0.1:0",
  HOP_LOG_FORMAT: "json",
  ...extra,
});

const fmt = (s: Sample[]) =>
  s.map((x) => `${x.rssMb} MB (ready ${x.readyMs} ms, startup_ms ${x.startupMs})`).join("; ");

if (import.meta.main) {
  const runs = Number(Deno.args.find((a) => /^\d+$/.test(a)) ?? 3);
  const clientOnly = Deno.args.includes("--client-only");
  const first: Sample[] = [];
  const restart: Sample[] = [];
  for (let i = 0; i < (clientOnly ? 0 : runs); i++) {
    const dir = await Deno.makeTempDir({ prefix: "hopgate-rss-", dir: "/dev/shm" });
    first.push((await sample("server.ts", serverEnv(dir), "server ready")).sample);
    restart.push((await sample("server.ts", serverEnv(dir), "server ready")).sample);
    await Deno.remove(dir, { recursive: true });
  }
  if (!clientOnly) {
    console.log(`server pglite first start: ${fmt(first)}`);
    console.log(`server pglite restart:     ${fmt(restart)}`);
  }
  if (!Deno.args.includes("--pglite-only")) {
    const pg = await startPostgres();
    const dirs: string[] = [];
    try {
      const withPg: Sample[] = [];
      for (let i = 0; i < runs; i++) {
        if (clientOnly) {
          dirs.push(await Deno.makeTempDir({ prefix: "hopgate-rss-", dir: "/dev/shm" }));
          break;
        }
        const dir = await Deno.makeTempDir({ prefix: "hopgate-rss-", dir: "/dev/shm" });
        dirs.push(dir);
        withPg.push(
          (await sample(
            "server.ts",
            serverEnv(dir, { HOP_DB_DSN: pg.dsn, HOP_SECRET_KEY: BENCH_SECRET }),
            "server ready",
          )).sample,
        );
      }
      if (!clientOnly) console.log(`server postgres:           ${fmt(withPg)}`);
      // The client's idle footprint with its tunnel up, against a server on the same database.
      // Debug mode lets the admin API answer on 127.0.0.1 (fetch cannot send another Host).
      const server = await sample(
        "server.ts",
        serverEnv(dirs[0], {
          HOP_DB_DSN: pg.dsn,
          HOP_SECRET_KEY: BENCH_SECRET,
          HOP_SERVER_DEBUG: "true",
          HOP_LOG_LEVEL: "info",
        }),
        "server ready",
        true,
      );
      try {
        const res = await fetch(`http://${server.ready.http}/api/v1/admin/domains`, {
          method: "POST",
          headers: {
            authorization: "Bearer bench-admin-key-0123456789abcdef",
            "content-type": "application/json",
          },
          body: JSON.stringify({ domain: "app.example.com" }),
        });
        const key = (await res.json()).client_api_key as string;
        const client: Sample[] = [];
        for (let i = 0; i < runs; i++) {
          client.push(
            (await sample(Deno.env.get("IDLE_RSS_CLIENT_ENTRY") ?? "client.ts", {
              HOP_CLIENT_SERVER_ADDR: String(server.ready.dtls),
              HOP_CLIENT_DOMAIN: "app.example.com",
              HOP_CLIENT_API_KEY: key,
              HOP_CLIENT_LOCAL_TARGET: "127.0.0.1:8080",
              HOP_LOG_FORMAT: "json",
              HOP_LOG_LEVEL: "info",
              ...(Deno.env.get("HOP_RECORD_CIPHER")
                ? { HOP_RECORD_CIPHER: Deno.env.get("HOP_RECORD_CIPHER")! }
                : {}),
            }, "tunnel up")).sample,
          );
        }
        console.log(`client (tunnel up):        ${fmt(client)}`);
      } finally {
        await server.stop();
      }
    } finally {
      await pg.stop();
      for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
    }
  }
}
