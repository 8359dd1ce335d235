/** A HopGate server process for tests, on loopback ports it picks itself. */
import { request as httpRequest } from "node:http";
import { type RunningProcess, startProcess } from "./process.ts";
import { sharedPostgresDsn, sharedPostgresEnabled } from "./shared_postgres.ts";

export const ADMIN_KEY = "test-admin-key-0123456789abcdef";
export const SERVER_DOMAIN = "hop.test";
/** HOP_SECRET_KEY for servers on PostgreSQL (required there; the embedded database generates its own). */
export const SECRET_KEY = "7c1e9a4f0b3d5e7f9a1c3e5f7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d";

export interface TestServer {
  proc: RunningProcess;
  /** http://127.0.0.1:PORT of the plain HTTP listener (admin API until the HTTPS front exists). */
  httpUrl: string;
  ready: Record<string, unknown>;
  /** A fetch against the admin API with the admin key. */
  admin(path: string, init?: RequestInit & { key?: string | null }): Promise<Response>;
  stop(): Promise<void>;
}

export interface ServerOptions {
  dataDir: string;
  /** PostgreSQL to use; unset: a database of the run's shared cluster, or PGlite when `embedded`. */
  dsn?: string;
  /** On the embedded PGlite in dataDir (tests of the embedded database itself). */
  embedded?: boolean;
  env?: Record<string, string>;
}

let sharedHostClient: Deno.HttpClient | undefined;

/** A fetch client that sends the Host header it is given (Deno's default client overrides it). */
export function hostClient(): Deno.HttpClient {
  sharedHostClient ??= Deno.createHttpClient({ allowHost: true });
  return sharedHostClient;
}

/** Starts `server.ts` and waits for its ready line. */
export async function startTestServer(options: ServerOptions): Promise<TestServer> {
  const dsn = options.dsn ??
    (!options.embedded && sharedPostgresEnabled() ? await sharedPostgresDsn(options.dataDir) : undefined);
  const env: Record<string, string> = {
    HOP_SERVER_DOMAIN: SERVER_DOMAIN,
    HOP_ADMIN_API_KEY: ADMIN_KEY,
    HOP_SERVER_HTTP_LISTEN: "127.0.0.1:0",
    HOP_SERVER_HTTPS_LISTEN: "127.0.0.1:0",
    HOP_SERVER_DTLS_LISTEN: "127.0.0.1:0",
    HOP_SERVER_METRICS_LISTEN: "127.0.0.1:0",
    HOP_DATA_DIR: options.dataDir,
    HOP_LOG_LEVEL: "debug",
    HOP_SERVER_TLS_MODE: "off",
    ...(dsn ? { HOP_DB_DSN: dsn, HOP_SECRET_KEY: SECRET_KEY } : {}),
    ...options.env,
  };
  const proc = startProcess("server.ts", [], env);
  let ready;
  try {
    ready = await proc.waitFor((l) => l.msg === "server ready", 30_000);
  } catch (e) {
    await proc.stop("SIGKILL");
    throw e;
  }
  const httpUrl = `http://${ready.http}`;
  return {
    proc,
    httpUrl,
    ready,
    admin(path, init = {}) {
      const headers = new Headers(init.headers);
      const key = init.key === undefined ? ADMIN_KEY : init.key;
      if (key !== null) headers.set("authorization", `Bearer ${key}`);
      if (init.body && !headers.has("content-type")) headers.set("content-type", "application/json");
      // The admin API answers only for the server's domain (IP literals only in dev mode).
      headers.set("host", SERVER_DOMAIN);
      return fetch(
        `${httpUrl}/api/v1/admin${path}`,
        { ...init, headers, client: hostClient() } as RequestInit,
      );
    },
    async stop() {
      const status = await proc.stop();
      if (status.code !== 0 && status.signal === null) {
        throw new Error(`server exited with ${status.code}: ${proc.stderr()}`);
      }
    },
  };
}

/** An answer to `hostRequest`. */
export interface HostReply {
  status: number;
  text: string;
  headers: Record<string, unknown>;
}

/**
 * One plain-HTTP request to 127.0.0.1:port with the given Host (fetch cannot set Host), on a fresh
 * connection; the admin key goes with requests for the server's own domain.
 */
export function hostRequest(
  port: number,
  host: string,
  path: string,
  init: { method?: string; body?: string } = {},
): Promise<HostReply> {
  return new Promise<HostReply>((resolve, reject) => {
    const headers: Record<string, string> = { host };
    if (host === SERVER_DOMAIN) headers.authorization = `Bearer ${ADMIN_KEY}`;
    if (init.body) headers["content-type"] = "application/json";
    const req = httpRequest(
      {
        hostname: "127.0.0.1",
        port,
        path,
        method: init.method ?? "GET",
        headers,
        agent: false,
        timeout: 5000,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => text += c);
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end(init.body);
  });
}
