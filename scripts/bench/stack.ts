/**
 * Starts the pieces on 127.0.0.1 (in a network namespace when asked): the origin, a HopGate server
 * with its own data directory (TLS off or self-signed), a registered domain and a client.
 * Admin calls go through curl so they work inside a namespace too.
 */
import { Proc, rssKb, run, sleep } from "./proc.ts";

const root = new URL("../../", import.meta.url).pathname;
export const BENCH_DOMAIN = "bench.test";

export interface Origin {
  proc: Proc;
  port: number;
}

export interface Stack {
  tls: "off" | "self-signed";
  ns?: string;
  server: Proc;
  client: Proc;
  httpPort: number;
  httpsPort: number | null;
  dtlsPort: number;
  /** CA of the self-signed certificates (null with TLS off). */
  ca: string | null;
  adminKey: string;
  clientKey: string;
  options: StackOptions;
  /** RSS of the server that created the database (it is then restarted on it). */
  freshDbRssKb: number;
  /** Client keys of every registered domain. */
  keys: Record<string, string>;
  dataDir: string;
  /** The gateway's base URL for BENCH_DOMAIN and the curl --resolve entry that makes it reach 127.0.0.1. */
  base: string;
  resolve: string;
}

function hex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/**
 * The client's deno flags, as `deno task client` and `deno task compile` run it (deno.json);
 * BENCH_CLIENT_FLAGS replaces them, e.g. to compare V8 flags.
 */
const CLIENT_FLAGS = (Deno.env.get("BENCH_CLIENT_FLAGS") ?? "--no-code-cache").split(" ").filter((f) =>
  f !== ""
);

function deno(entry: string, extra: string[] = []): string[] {
  return [Deno.execPath(), "run", "-A", ...extra, `${root}${entry}`];
}

export async function startOrigin(logDir: string, ns?: string): Promise<Origin> {
  const proc = new Proc(
    `origin${ns ? "-ns" : ""}`,
    deno("scripts/bench/origin.ts"),
    `${logDir}/origin${ns ? "-ns" : ""}.log`,
    {
      ns,
    },
  );
  const ready = await proc.waitJson((o) => o.origin === "ready", 30_000, "origin ready line");
  return { proc, port: Number(ready.port) };
}

function port(addr: unknown): number {
  return Number(String(addr).split(":").pop());
}

const SERVER_DOMAIN = "hop.bench.test";

/** Registers a domain through the admin API; returns its client key or throws with the answer. */
export async function registerDomain(
  stack: Pick<Stack, "tls" | "ns" | "httpPort" | "httpsPort" | "ca" | "adminKey">,
  domain: string,
): Promise<string> {
  const url = stack.tls === "off"
    ? `http://127.0.0.1:${stack.httpPort}/api/v1/admin/domains`
    : `https://localhost:${stack.httpsPort}/api/v1/admin/domains`;
  // The admin API answers for the server's own domain (IP literals and localhost only in dev mode).
  const tlsArgs = stack.tls === "off"
    ? ["-H", `host: ${SERVER_DOMAIN}`]
    : ["--cacert", stack.ca!, "--resolve", `localhost:${stack.httpsPort}:127.0.0.1`];
  const r = await run([
    "curl",
    "-sS",
    "--max-time",
    "20",
    ...tlsArgs,
    "-H",
    `Authorization: Bearer ${stack.adminKey}`,
    "-H",
    "content-type: application/json",
    "-d",
    JSON.stringify({ domain, memo: "deno task bench" }),
    "-w",
    "\n%{http_code}",
    url,
  ], { ns: stack.ns });
  const lines = r.stdout.split("\n");
  const status = lines.pop();
  const body = lines.join("\n");
  try {
    const key = JSON.parse(body).client_api_key;
    if (typeof key === "string") return key;
  } catch { /* below */ }
  throw new Error(
    `POST ${url.replace(/^https?:\/\/[^/]+/, "")} {"domain":"${domain}"} answered HTTP ${status} ${
      JSON.stringify(body.slice(0, 200))
    }${r.stderr ? ` (${r.stderr.trim()})` : ""}`,
  );
}

/** Writes the domains into a stopped server's database (scripts/bench/seed.ts); returns their keys. */
async function seedDomains(dataDir: string, domains: string[], ns?: string): Promise<Record<string, string>> {
  const r = await run(deno("scripts/bench/seed.ts").concat([dataDir, ...domains]), {
    ns,
    timeoutMs: 120_000,
  });
  try {
    return JSON.parse(r.stdout.trim().split("\n").pop() ?? "");
  } catch {
    throw new Error(`seeding ${domains.join(", ")} failed: ${r.stderr.slice(-500)}`);
  }
}

/** GET through the gateway until it answers 200 (the client's tunnel is routable). */
async function waitRoutable(stack: Stack, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = "";
  while (performance.now() < deadline) {
    const r = await run([
      "curl",
      "-sS",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "--max-time",
      "5",
      "--resolve",
      stack.resolve,
      ...(stack.ca ? ["--cacert", stack.ca] : []),
      `${stack.base}/small`,
    ], { ns: stack.ns });
    last = `${r.stdout} ${r.stderr}`.trim();
    if (r.stdout === "200") return;
    await sleep(200);
  }
  throw new Error(`the gateway never answered 200 for ${BENCH_DOMAIN} (last: ${last})`);
}

function startServer(
  o: StackOptions,
  adminKey: string,
  run: number,
): Proc {
  return new Proc(
    `${o.name}-server${run === 1 ? "-first-start" : ""}`,
    deno("server.ts", run === 1 ? [] : o.serverDenoArgs),
    `${o.logDir}/${o.name}-server${run === 1 ? "-first-start" : ""}.log`,
    {
      ns: o.ns,
      env: {
        HOP_SERVER_DOMAIN: SERVER_DOMAIN,
        HOP_ADMIN_API_KEY: adminKey,
        HOP_SERVER_HTTP_LISTEN: "127.0.0.1:0",
        HOP_SERVER_HTTPS_LISTEN: "127.0.0.1:0",
        HOP_SERVER_DTLS_LISTEN: `127.0.0.1:${o.dtlsPort ?? 0}`,
        HOP_SERVER_METRICS_LISTEN: "off",
        HOP_SERVER_TLS_MODE: o.tls,
        HOP_DATA_DIR: o.dataDir,
        HOP_LOG_LEVEL: "info",
        HOP_LOG_FORMAT: "json",
        ...o.serverEnv,
      },
    },
  );
}

export interface StackOptions {
  name: string;
  tls: "off" | "self-signed";
  originPort: number;
  logDir: string;
  dataDir: string;
  ns?: string;
  /** Extra deno flags for the server that serves the figures (not the first start that creates the database). */
  serverDenoArgs?: string[];
  clientDenoArgs?: string[];
  /** Extra client environment, given the stack (e.g. the TCP carrier and the stack's CA). */
  clientEnv?: (stack: Stack) => Record<string, string>;
  /** Extra server environment (overrides the defaults above). */
  serverEnv?: Record<string, string>;
  /** Fixed UDP port for the tunnel (default: any free one). */
  dtlsPort?: number;
  /** Domains to register besides BENCH_DOMAIN (their keys end up in Stack.keys). */
  extraDomains?: string[];
  /** Told about anything that went wrong but was worked around. */
  problem?: (message: string) => void;
}

async function serverReady(server: Proc, o: StackOptions, adminKey: string) {
  const ready = await server.waitJson((l) => l.msg === "server ready", 60_000, "server ready line");
  const httpPort = port(ready.http);
  const httpsPort = ready.https ? port(ready.https) : null;
  const publicPort = o.tls === "off" ? httpPort : httpsPort!;
  return {
    tls: o.tls,
    ns: o.ns,
    server,
    httpPort,
    httpsPort,
    dtlsPort: port(ready.dtls),
    ca: typeof ready.ca === "string" ? ready.ca : null,
    adminKey,
    dataDir: o.dataDir,
    base: `${o.tls === "off" ? "http" : "https"}://${BENCH_DOMAIN}:${publicPort}`,
    resolve: `${BENCH_DOMAIN}:${publicPort}:127.0.0.1`,
  };
}

/**
 * Server, domains, client. Domains are registered through the admin API; if that fails, the server
 * is stopped, the domains are written into its database directly and it is started again.
 */
export async function startStack(o: StackOptions): Promise<Stack> {
  const adminKey = hex(24);
  const domains = [BENCH_DOMAIN, ...(o.extraDomains ?? [])];
  const first = startServer(o, adminKey, 1);
  const firstReady = await serverReady(first, o, adminKey);
  const keys: Record<string, string> = {};
  let registered = true;
  try {
    for (const d of domains) keys[d] = await registerDomain(firstReady, d);
  } catch (e) {
    registered = false;
    o.problem?.(
      `${o.name}: admin API registration failed: ${
        (e as Error).message
      }; registered by writing the database directly (scripts/bench/seed.ts)`,
    );
  }
  // The first start created the database. PGlite's WASM memory grows while it does and never shrinks
  // (≈ 400 MB more RSS for that process's life), so the figures are taken from a server started again
  // on the existing database, as a production server runs; the first one's RSS is kept for the record.
  await sleep(1000);
  const freshDbRssKb = rssKb(first.pid);
  await first.stop();
  if (!registered) Object.assign(keys, await seedDomains(o.dataDir, domains, o.ns));
  const server = startServer(o, adminKey, 2);
  const partial = await serverReady(server, o, adminKey);
  // client: the server until startClient replaces it (stopStack and startClient skip that placeholder).
  const stack: Stack = {
    ...partial,
    client: server,
    clientKey: keys[BENCH_DOMAIN],
    keys,
    options: o,
    freshDbRssKb,
  };
  await startClient(stack);
  return stack;
}

/** Starts (or restarts) the stack's client and waits until requests reach the origin through it. */
export async function startClient(stack: Stack): Promise<void> {
  const o = stack.options;
  if (stack.client !== stack.server) await stack.client.stop(3000);
  clientRuns.set(stack, (clientRuns.get(stack) ?? 0) + 1);
  const n = clientRuns.get(stack)!;
  stack.client = new Proc(
    `${o.name}-client${n > 1 ? `-${n}` : ""}`,
    deno("client.ts", [...CLIENT_FLAGS, ...(o.clientDenoArgs ?? [])]),
    `${o.logDir}/${o.name}-client${n > 1 ? `-${n}` : ""}.log`,
    {
      ns: o.ns,
      env: {
        HOP_CLIENT_SERVER_ADDR: `127.0.0.1:${stack.dtlsPort}`,
        HOP_CLIENT_DOMAIN: BENCH_DOMAIN,
        HOP_CLIENT_API_KEY: stack.clientKey,
        HOP_CLIENT_LOCAL_TARGET: `127.0.0.1:${o.originPort}`,
        HOP_LOG_LEVEL: "info",
        HOP_LOG_FORMAT: "json",
        ...o.clientEnv?.(stack),
      },
    },
  );
  try {
    await stack.client.waitJson((l) => l.msg === "tunnel up", 30_000, "client 'tunnel up' line");
    await waitRoutable(stack, 15_000);
  } catch (e) {
    await stopStack(stack);
    throw e;
  }
}

const clientRuns = new WeakMap<Stack, number>();

export async function stopStack(stack: Stack): Promise<void> {
  if (stack.client !== stack.server) await stack.client.stop(3000);
  // Long enough for the server's own drain (10 s) to end and a --cpu-prof profile to be written.
  await stack.server.stop(12_000);
}
