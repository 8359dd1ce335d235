/** The server's configuration: option table, schemas and the typed result. */
import { z } from "zod";
import type { LogFormat, LogLevel } from "../log/logger.ts";
import { buildConfig, type Built } from "./build.ts";
import type { OptionSpec, Sources } from "./options.ts";
import {
  boolean,
  domainName,
  duration,
  type ListenAddress,
  listenAddress,
  logLevel,
  postgresDsn,
} from "./values.ts";

export type TlsMode = "self-signed" | "off";

export interface ServerConfig {
  domain: string;
  httpListen: ListenAddress;
  httpsListen: ListenAddress;
  dtlsListen: ListenAddress;
  debug: boolean;
  adminApiKey: string;
  dbDsn?: string;
  dataDir: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
  tlsMode: TlsMode;
  proxyTimeoutMs: number;
  /** Where /metrics is served; never the public port. Absent: no metrics listener. */
  metricsListen?: ListenAddress;
}

export const serverOptions: OptionSpec[] = [
  {
    key: "domain",
    flag: "server-domain",
    env: "HOP_SERVER_DOMAIN",
    description: "The server's own domain: admin API, /healthz, /readyz.",
    example: "hop.example.com",
  },
  {
    key: "httpListen",
    flag: "http-listen",
    env: "HOP_SERVER_HTTP_LISTEN",
    description: "Plain HTTP listener (ACME challenges, redirect to HTTPS).",
    default: ":80",
    example: "0.0.0.0:80",
  },
  {
    key: "httpsListen",
    flag: "https-listen",
    env: "HOP_SERVER_HTTPS_LISTEN",
    description: "HTTPS listener (TCP).",
    default: ":443",
    example: "0.0.0.0:443",
  },
  {
    key: "dtlsListen",
    flag: "dtls-listen",
    env: "HOP_SERVER_DTLS_LISTEN",
    description: "DTLS tunnel listener (UDP) that clients dial.",
    default: ":443",
    example: "0.0.0.0:443",
  },
  {
    key: "adminApiKey",
    flag: "admin-api-key",
    env: "HOP_ADMIN_API_KEY",
    description: "Bearer key of the admin API; at least 16 characters (try: openssl rand -hex 32).",
    example: "5f4dcc3b5aa765d61d8327deb882cf99",
    secret: true,
  },
  {
    key: "dbDsn",
    flag: "db-dsn",
    env: "HOP_DB_DSN",
    description: "PostgreSQL URL; unset means the embedded database in HOP_DATA_DIR.",
    example: "postgres://hopgate:secret@127.0.0.1:5432/hopgate",
    secret: true,
  },
  {
    key: "dataDir",
    flag: "data-dir",
    env: "HOP_DATA_DIR",
    description: "Directory for the embedded database and local state.",
    default: "./data",
    example: "/var/lib/hopgate",
  },
  {
    key: "tlsMode",
    flag: "tls-mode",
    env: "HOP_SERVER_TLS_MODE",
    description: "self-signed (certificates generated per host name) or off (behind another TLS terminator).",
    default: "self-signed",
    example: "self-signed",
  },
  {
    key: "proxyTimeoutMs",
    flag: "proxy-timeout",
    env: "HOP_SERVER_PROXY_TIMEOUT",
    description: "Longest wait for a response head from the client before answering 504.",
    default: "60s",
    example: "60s",
  },
  {
    key: "metricsListen",
    flag: "metrics-listen",
    env: "HOP_SERVER_METRICS_LISTEN",
    description: 'Prometheus /metrics listener (keep it private); "off" disables it.',
    default: "127.0.0.1:9100",
    example: "127.0.0.1:9100",
  },
  {
    key: "logLevel",
    flag: "log-level",
    env: "HOP_LOG_LEVEL",
    description: "trace, debug, info, warn, error, fatal or silent.",
    default: "info",
    example: "info",
  },
  {
    key: "logFormat",
    flag: "log-format",
    env: "HOP_LOG_FORMAT",
    description: "json (one object per line, for Loki) or pretty (for a terminal).",
    default: "json",
    example: "json",
  },
  {
    key: "debug",
    flag: "debug",
    env: "HOP_SERVER_DEBUG",
    description: "Debug mode: log level debug unless HOP_LOG_LEVEL says otherwise.",
    default: "false",
    example: "true",
    boolean: true,
  },
];

const schemas = {
  domain: domainName,
  httpListen: listenAddress,
  httpsListen: listenAddress,
  dtlsListen: listenAddress,
  adminApiKey: z.string().refine((s) => s.trim().length >= 16, {
    message: "must be at least 16 characters (try: openssl rand -hex 32)",
  }),
  dbDsn: postgresDsn.optional(),
  dataDir: z.string().min(1, "must not be empty"),
  tlsMode: z.enum(["self-signed", "off"], { error: () => "must be self-signed or off" }),
  proxyTimeoutMs: duration,
  metricsListen: z.string().transform((s, ctx) => {
    if (s.trim() === "off") return undefined;
    const r = listenAddress.safeParse(s);
    if (r.success) return r.data;
    ctx.addIssue({ code: "custom", message: 'must be host:port or "off", e.g. 127.0.0.1:9100' });
    return z.NEVER;
  }),
  logLevel,
  logFormat: z.enum(["json", "pretty"], { error: () => "must be json or pretty" }),
  debug: boolean,
};

/** Loads and validates the server configuration; throws ConfigError with every problem. */
export function loadServerConfig(sources: Sources): Built<ServerConfig> {
  const built = buildConfig<ServerConfig>(serverOptions, schemas, sources);
  const c = built.config;
  if (!built.help && !built.version && c.debug && !explicitLevel(sources)) c.logLevel = "debug";
  return built;
}

function explicitLevel(sources: Sources): boolean {
  return sources.env.HOP_LOG_LEVEL !== undefined || sources.args.some((a) => a.startsWith("--log-level"));
}
