/**
 * The pieces of a tunnel end-to-end test as real processes: a self-signed HopGate server, its admin
 * API over HTTPS (through the resolver proxy, so the certificate chain is verified for hop.test),
 * tunnel clients, and curl as a second real HTTP client.
 */
import { type LogLine, type RunningProcess, startProcess } from "./process.ts";
import { ADMIN_KEY, SERVER_DOMAIN, startTestServer, type TestServer } from "./server.ts";
import { type ResolverProxy, startResolverProxy } from "./resolver_proxy.ts";
import { hashStream } from "./tunnel_origin.ts";
import { makeScratchDir } from "./scratch.ts";

export { ADMIN_KEY, SERVER_DOMAIN };

export interface TunnelServer {
  server: TestServer;
  proc: RunningProcess;
  dataDir: string;
  httpsPort: number;
  httpPort: number;
  /** host:port of the DTLS endpoint, for HOP_CLIENT_SERVER_ADDR. */
  dtls: string;
  caFile: string;
  caPem: string;
  proxy: ResolverProxy;
  /** fetch through the resolver proxy; `http2` picks the protocol (undefined = ALPN, h2 preferred). */
  fetch(url: string, init?: RequestInit & { http2?: boolean }): Promise<Response>;
  /** The admin API over HTTPS at https://hop.test:PORT/api/v1/admin. */
  admin(path: string, init?: RequestInit): Promise<Response>;
  /** Registers a domain and returns its client key. */
  register(domain: string): Promise<string>;
  /** https://HOST:PORT */
  url(host: string, path?: string): string;
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  /** Stops the server if still running, closes the proxy, removes its data dir if it owns it; never throws. */
  cleanup(options?: { keepData?: boolean }): Promise<void>;
}

export interface TunnelServerOptions {
  dataDir?: string;
  env?: Record<string, string>;
  /** Fixed ports (a restart on the ports a previous server had). */
  ports?: { http: number; https: number; dtls: number };
  /** Remove `dataDir` on cleanup although it was given (default: only a data dir made here is removed). */
  ownDataDir?: boolean;
}

const portOf = (hostPort: unknown) => Number(String(hostPort).split(":").pop());

/** Kills a process with SIGTERM, then SIGKILL if it is still there after `graceMs`. */
export async function stopProcess(p: RunningProcess, graceMs = 5000): Promise<Deno.CommandStatus> {
  try {
    p.child.kill("SIGTERM");
  } catch { /* gone */ }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      try {
        p.child.kill("SIGKILL");
      } catch { /* gone */ }
      resolve();
    }, graceMs);
  });
  await Promise.race([p.status, killed]);
  clearTimeout(timer);
  return await p.status;
}

/** Starts a self-signed server (admin reachable over HTTPS only). */
export async function startTunnelServer(options: TunnelServerOptions = {}): Promise<TunnelServer> {
  const ownsData = options.ownDataDir ?? options.dataDir === undefined;
  const dataDir = options.dataDir ?? await makeScratchDir("hopgate-tunnel-");
  const env: Record<string, string> = {
    HOP_SERVER_TLS_MODE: "self-signed",
    HOP_LOG_LEVEL: "info",
    ...(options.ports
      ? {
        HOP_SERVER_HTTP_LISTEN: `127.0.0.1:${options.ports.http}`,
        HOP_SERVER_HTTPS_LISTEN: `127.0.0.1:${options.ports.https}`,
        HOP_SERVER_DTLS_LISTEN: `127.0.0.1:${options.ports.dtls}`,
      }
      : {}),
    ...options.env,
  };
  const server = await startTestServer({ dataDir, env });
  const ready = server.ready;
  const httpsPort = portOf(ready.https);
  const caFile = String(ready.ca);
  const caPem = await Deno.readTextFile(caFile);
  const proxy = startResolverProxy(() => httpsPort);
  const clients = new Map<string, Deno.HttpClient>();
  const clientFor = (http2: boolean | undefined) => {
    const key = String(http2);
    let c = clients.get(key);
    if (!c) {
      c = proxy.client({ caPem, http2 });
      clients.set(key, c);
    }
    return c;
  };
  const url = (host: string, path = "/") => `https://${host}:${httpsPort}${path}`;
  const doFetch = (u: string, init: RequestInit & { http2?: boolean } = {}) => {
    const { http2, ...rest } = init;
    return fetch(u, { ...rest, client: clientFor(http2) } as RequestInit);
  };
  const admin = (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${ADMIN_KEY}`);
    if (init.body && !headers.has("content-type")) headers.set("content-type", "application/json");
    return doFetch(url(SERVER_DOMAIN, `/api/v1/admin${path}`), { ...init, headers });
  };
  let stopped: Promise<Deno.CommandStatus> | undefined;
  // A server that fails before the test stops it makes the test fail far from the cause: say so at cleanup.
  let died: Deno.CommandStatus | undefined;
  server.proc.status.then((s) => {
    if (!stopped) died = s;
  });
  const stop = (signal: Deno.Signal = "SIGTERM") => {
    if (signal === "SIGTERM") stopped ??= stopProcess(server.proc);
    else {
      try {
        server.proc.child.kill(signal);
      } catch { /* gone */ }
      stopped ??= server.proc.status;
    }
    return stopped;
  };
  return {
    server,
    proc: server.proc,
    dataDir,
    httpsPort,
    httpPort: portOf(ready.http),
    dtls: `127.0.0.1:${portOf(ready.dtls)}`,
    caFile,
    caPem,
    proxy,
    fetch: doFetch,
    admin,
    async register(domain) {
      const res = await admin("/domains", { method: "POST", body: JSON.stringify({ domain, memo: "e2e" }) });
      const text = await res.text();
      if (res.status !== 201) throw new Error(`registering ${domain}: ${res.status} ${text}`);
      return JSON.parse(text).client_api_key as string;
    },
    url,
    stop,
    async cleanup(cleanupOptions = {}) {
      if (died && !died.success) {
        console.error(
          `the server exited before the test stopped it (code ${died.code}, signal ${died.signal}); ` +
            `stderr:\n${server.proc.stderr().slice(-3000)}\nlast lines:\n` +
            server.proc.lines.slice(-10).map((l) => JSON.stringify(l).slice(0, 500)).join("\n"),
        );
      }
      await stop().catch(() => {});
      proxy.close();
      if (ownsData && !cleanupOptions.keepData) {
        await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      }
    },
  };
}

export interface TunnelClient {
  proc: RunningProcess;
  /** The `tunnel up` lines so far. */
  ups(): LogLine[];
  /** Waits for the n-th `tunnel up` line (1-based). */
  waitUp(n?: number, timeoutMs?: number): Promise<LogLine>;
  /** The client's `request` log lines. */
  requests(): LogLine[];
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

export interface TunnelClientOptions {
  dtls: string;
  domain: string;
  key: string;
  target: string;
  env?: Record<string, string>;
  /** Wait for the first `tunnel up` (default true). */
  wait?: boolean;
}

/** Starts client.ts with JSON logs. */
export async function startTunnelClient(o: TunnelClientOptions): Promise<TunnelClient> {
  const proc = startProcess("client.ts", [], {
    HOP_CLIENT_SERVER_ADDR: o.dtls,
    HOP_CLIENT_DOMAIN: o.domain,
    HOP_CLIENT_API_KEY: o.key,
    HOP_CLIENT_LOCAL_TARGET: o.target,
    HOP_LOG_FORMAT: "json",
    HOP_LOG_LEVEL: "info",
    // Many clients run at once in the suite: none of them competes for the inspector's 127.0.0.1:4040.
    HOP_CLIENT_INSPECT_LISTEN: "off",
    ...o.env,
  });
  const ups = () => proc.lines.filter((l) => l.msg === "tunnel up");
  const client: TunnelClient = {
    proc,
    ups,
    async waitUp(n = 1, timeoutMs = 20_000) {
      let seen = 0;
      return await proc.waitFor((l) => l.msg === "tunnel up" && ++seen === n, timeoutMs).catch((e) => {
        // waitFor scans the lines already printed first; recount for a precise answer.
        const all = ups();
        if (all.length >= n) return all[n - 1];
        throw e;
      });
    },
    requests: () => proc.lines.filter((l) => l.msg === "request"),
    stop: (signal: Deno.Signal = "SIGTERM") => {
      if (signal === "SIGTERM") return stopProcess(proc);
      try {
        proc.child.kill(signal);
      } catch { /* gone */ }
      return proc.status;
    },
  };
  if (o.wait !== false) {
    try {
      await client.waitUp(1);
    } catch (e) {
      await stopProcess(proc, 1000);
      throw e;
    }
  }
  return client;
}

export interface CurlResult {
  code: number;
  status: number;
  /** "1.1" or "2" */
  httpVersion: string;
  headers: Headers;
  body: Uint8Array;
  text: string;
  timeMs: number;
  /** With hashBody: SHA-256 and length of the body. */
  hashed?: { sha256: string; bytes: number };
}

/**
 * Runs curl against https://HOST:PORT/PATH with the server's CA and a --resolve to loopback; the
 * status line, http_version and headers come from curl itself.
 */
export async function curl(
  srv: TunnelServer,
  host: string,
  path: string,
  args: string[] = [],
  stdin?: ReadableStream<Uint8Array>,
  /** Hash the body as it streams instead of keeping it (`body` is then empty). */
  hashBody = false,
): Promise<CurlResult> {
  const headerFile = await Deno.makeTempFile({ prefix: "hopgate-curl-" });
  const started = performance.now();
  try {
    const child = new Deno.Command("curl", {
      args: [
        "-sS",
        "--cacert",
        srv.caFile,
        "--resolve",
        `${host}:${srv.httpsPort}:127.0.0.1`,
        "-D",
        headerFile,
        ...args,
        srv.url(host, path),
      ],
      stdin: stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (stdin) stdin.pipeTo(child.stdin).catch(() => {});
    let out: { code: number; success: boolean; stdout: Uint8Array; stderr: Uint8Array };
    let hashed: { sha256: string; bytes: number } | undefined;
    if (hashBody) {
      const [h, stderr, status] = await Promise.all([
        hashStream(child.stdout),
        new Response(child.stderr).bytes(),
        child.status,
      ]);
      hashed = h;
      out = { code: status.code, success: status.success, stdout: new Uint8Array(), stderr };
    } else out = await child.output();
    const timeMs = performance.now() - started;
    const raw = await Deno.readTextFile(headerFile);
    // With 100-continue or redirects there may be several heads; the last one is the answer.
    const heads = raw.split(/\r\n\r\n/).filter((h) => h.startsWith("HTTP/"));
    const last = heads.at(-1) ?? "";
    const [statusLine, ...lines] = last.split("\r\n");
    const m = /^HTTP\/([\d.]+) (\d{3})/.exec(statusLine);
    const headers = new Headers();
    for (const l of lines) {
      const i = l.indexOf(":");
      if (i > 0) headers.append(l.slice(0, i).trim(), l.slice(i + 1).trim());
    }
    if (!out.success && !m) {
      throw new Error(`curl failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`);
    }
    return {
      code: out.code,
      status: m ? Number(m[2]) : 0,
      httpVersion: m ? m[1] : "",
      headers,
      body: out.stdout,
      text: new TextDecoder().decode(out.stdout),
      timeMs,
      hashed,
    };
  } finally {
    await Deno.remove(headerFile).catch(() => {});
  }
}

export interface RunningTunnel {
  srv: TunnelServer;
  client: TunnelClient;
}

/**
 * A self-signed server with `domain` registered and a client forwarding it to `target`, handed to `fn`;
 * both processes are stopped afterwards whatever happened (the caller owns its origin).
 */
export async function withTunnel(
  o: {
    domain: string;
    target: string;
    serverEnv?: Record<string, string>;
    clientEnv?: Record<string, string>;
  },
  fn: (t: RunningTunnel) => Promise<void>,
): Promise<void> {
  let srv: TunnelServer | undefined;
  let client: TunnelClient | undefined;
  try {
    srv = await startTunnelServer({ env: o.serverEnv });
    const key = await srv.register(o.domain);
    client = await startTunnelClient({
      dtls: srv.dtls,
      domain: o.domain,
      key,
      target: o.target,
      env: o.clientEnv,
    });
    await fn({ srv, client });
  } finally {
    if (client) await stopProcess(client.proc);
    if (srv) await srv.cleanup();
  }
}
