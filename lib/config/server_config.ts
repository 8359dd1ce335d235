/** The server's configuration: option table, schemas and the typed result. */
import { type Cidr, parseCidr } from "./cidr.ts";
import { z } from "zod";
import type { LogFormat, LogLevel } from "../log/logger.ts";
import { buildConfig, type Built } from "./build.ts";
import { ConfigError, logLevelOption, type OptionSpec, recordCipherOption, type Sources } from "./options.ts";
import { keyStrength, randomHexKey } from "./key_strength.ts";
import {
  boolean,
  domainName,
  duration,
  type ListenAddress,
  listenAddress,
  logLevel,
  postgresDsn,
} from "./values.ts";

export type TlsMode = "acme" | "self-signed" | "off";

/** Let's Encrypt's production directory: the default CA in ACME mode. */
export const LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory";
/** Let's Encrypt's staging directory (untrusted certificates, generous rate limits). */
export const LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory";

/** Top-level names no public CA issues for (RFC 2606, RFC 6761, RFC 6762, ICANN's .internal). */
const PRIVATE_TLDS = new Set(["localhost", "test", "local", "internal", "example", "invalid", "lan", "home"]);
const PRIVATE_SUFFIXES = ["home.arpa", "example.com", "example.net", "example.org"];

/**
 * Whether a public CA can issue for the name: at least two labels and not under a reserved or
 * local-only suffix. Decides the default TLS mode (acme for public names, self-signed otherwise).
 */
export function isPublicDomain(domain: string): boolean {
  const labels = domain.toLowerCase().replace(/\.$/, "").split(".");
  if (labels.length < 2 || PRIVATE_TLDS.has(labels[labels.length - 1])) return false;
  return !PRIVATE_SUFFIXES.some((s) => domain === s || domain.endsWith(`.${s}`));
}

export interface ServerConfig {
  domain: string;
  httpListen: ListenAddress;
  httpsListen: ListenAddress;
  dtlsListen: ListenAddress;
  debug: boolean;
  adminApiKey: string;
  dbDsn?: string;
  dataDir: string;
  /** AES-GCM backend of the DTLS record layer. */
  recordCipher: "auto" | "openssl" | "node";
  logLevel: LogLevel;
  logFormat: LogFormat;
  tlsMode: TlsMode;
  proxyTimeoutMs: number;
  /** ACME directory URL (acme mode). */
  acmeDirectoryUrl: string;
  /** Contact address of the ACME account. */
  acmeEmail?: string;
  /** PEM file of an extra CA trusted for the ACME directory's own HTTPS. */
  acmeCaFile?: string;
  /** Where /metrics is served; never the public port. Absent: no metrics listener. */
  metricsListen?: ListenAddress;
  /** HOP_SECRET_KEY: 64 hex characters sealing client keys at rest; required with dbDsn. */
  secretKey?: string;
  /** Peers (CIDRs) whose X-Forwarded-For is trusted: a load balancer or CDN in front of the server. */
  trustedProxies: Cidr[];
  /** What one client address may hold: open connections, and requests in progress per domain. */
  maxConnectionsPerIp: number;
  maxRequestsPerIp: number;
  /** What an unauthenticated connection may hold: TLS handshake, request head, idle keep-alive (ms). */
  tlsHandshakeTimeoutMs: number;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
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
    description: "Bearer key of the admin API; at least 64 bits of entropy (make one: openssl rand -hex 32).",
    // Fresh on every --help, so nobody copies a published key.
    example: randomHexKey(),
    secret: true,
  },
  {
    key: "secretKey",
    flag: "secret-key",
    env: "HOP_SECRET_KEY",
    description: "Secret that seals client keys in the database (64 hex; make one: openssl rand -hex 32). " +
      "Required with HOP_DB_DSN (the same on every server); otherwise generated once in HOP_DATA_DIR/secret.key.",
    example: randomHexKey(),
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
    description:
      "acme (certificates from an ACME CA such as Let's Encrypt), self-signed (a local CA) or off (behind " +
      "another TLS terminator); auto = acme for a public server domain, self-signed for .localhost, .test, " +
      ".local, .internal, .example, .invalid and single-label names.",
    default: "auto",
    example: "acme",
  },
  {
    key: "acmeDirectoryUrl",
    flag: "acme-directory-url",
    env: "HOP_ACME_DIRECTORY_URL",
    description: "ACME directory URL; letsencrypt (the default) or letsencrypt-staging name Let's Encrypt's.",
    default: "letsencrypt",
    example: "https://acme-staging-v02.api.letsencrypt.org/directory",
  },
  {
    key: "acmeEmail",
    flag: "acme-email",
    env: "HOP_ACME_EMAIL",
    description: "Contact e-mail of the ACME account (expiry notices); optional.",
    example: "admin@example.com",
  },
  {
    key: "acmeCaFile",
    flag: "acme-ca-file",
    env: "HOP_ACME_CA_FILE",
    description: "PEM file of an extra CA to trust for the ACME directory's HTTPS (private ACME servers).",
    example: "/etc/hopgate/acme-ca.pem",
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
    key: "trustedProxies",
    flag: "trusted-proxies",
    env: "HOP_SERVER_TRUSTED_PROXIES",
    description:
      "Comma-separated CIDRs of proxies in front of the server whose X-Forwarded-For is kept (others' is replaced).",
    default: "",
    example: "10.0.0.0/8,2001:db8::/32",
  },
  {
    key: "maxConnectionsPerIp",
    flag: "max-connections-per-ip",
    env: "HOP_SERVER_MAX_CONNECTIONS_PER_IP",
    description: "Open HTTP(S) connections one client address may hold; more are shed with a warn line.",
    default: "256",
    example: "1024",
  },
  {
    key: "maxRequestsPerIp",
    flag: "max-requests-per-ip",
    env: "HOP_SERVER_MAX_REQUESTS_PER_IP",
    description: "Requests and upgrades one client address may have in progress on one domain (then 429).",
    default: "512",
    example: "2000",
  },
  {
    key: "tlsHandshakeTimeoutMs",
    flag: "tls-handshake-timeout",
    env: "HOP_SERVER_TLS_HANDSHAKE_TIMEOUT",
    description: "Longest a connection may take from accept to a finished TLS handshake.",
    default: "10s",
    example: "5s",
  },
  {
    key: "headerTimeoutMs",
    flag: "header-timeout",
    env: "HOP_SERVER_HEADER_TIMEOUT",
    description: "Longest a request head may take to arrive once it has started (trickled heads are cut).",
    default: "15s",
    example: "10s",
  },
  {
    key: "idleTimeoutMs",
    flag: "idle-timeout",
    env: "HOP_SERVER_IDLE_TIMEOUT",
    description: "An idle keep-alive connection (no request in progress) is closed after this.",
    default: "30s",
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
  recordCipherOption,
  logLevelOption,
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

/** A whole number in [min, max]. */
function count(min: number, max: number) {
  return z.string().transform((s, ctx) => {
    const n = Number(s.trim());
    if (!/^\d+$/.test(s.trim()) || n < min || n > max) {
      ctx.addIssue({ code: "custom", message: `must be a whole number from ${min} to ${max}` });
      return z.NEVER;
    }
    return n;
  });
}

const schemas = {
  domain: domainName,
  httpListen: listenAddress,
  httpsListen: listenAddress,
  dtlsListen: listenAddress,
  adminApiKey: z.string().transform((s, ctx) => {
    const key = s.trim();
    const how = `make one with: openssl rand -hex 32 (for example ${randomHexKey()})`;
    if (key.length < 16) {
      ctx.addIssue({ code: "custom", message: `must be at least 16 characters; ${how}` });
      return z.NEVER;
    }
    const { problem } = keyStrength(key);
    if (problem !== null) {
      ctx.addIssue({ code: "custom", message: `${problem}: it needs at least 64 bits of entropy; ${how}` });
      return z.NEVER;
    }
    return s;
  }),
  secretKey: z.string().regex(
    /^[0-9a-fA-F]{64}$/,
    "must be 64 hex characters (make one: openssl rand -hex 32)",
  )
    .optional(),
  dbDsn: postgresDsn.optional(),
  dataDir: z.string().min(1, "must not be empty"),
  tlsMode: z.enum(["auto", "acme", "self-signed", "off"], {
    error: () => "must be auto, acme, self-signed or off",
  }),
  acmeDirectoryUrl: z.string().transform((s, ctx) => {
    if (s === "letsencrypt") return LETS_ENCRYPT;
    if (s === "letsencrypt-staging") return LETS_ENCRYPT_STAGING;
    try {
      const url = new URL(s);
      if (url.protocol === "https:" || url.protocol === "http:") return s;
    } catch { /* reported below */ }
    ctx.addIssue({ code: "custom", message: "must be an https:// URL, letsencrypt or letsencrypt-staging" });
    return z.NEVER;
  }),
  acmeEmail: z.string().regex(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, "must be an e-mail address").optional(),
  acmeCaFile: z.string().min(1, "must not be empty").optional(),
  proxyTimeoutMs: duration,
  trustedProxies: z.string().transform((s, ctx) => {
    const out: Cidr[] = [];
    for (const item of s.split(",").map((x) => x.trim()).filter(Boolean)) {
      const c = parseCidr(item);
      if (typeof c === "string") {
        ctx.addIssue({ code: "custom", message: `${item}: ${c} (e.g. 10.0.0.0/8 or 2001:db8::/32)` });
        return z.NEVER;
      }
      out.push(c);
    }
    return out;
  }),
  maxConnectionsPerIp: count(1, 1_000_000),
  maxRequestsPerIp: count(1, 1_000_000),
  tlsHandshakeTimeoutMs: duration,
  headerTimeoutMs: duration,
  idleTimeoutMs: duration,
  metricsListen: z.string().transform((s, ctx) => {
    if (s.trim() === "off") return undefined;
    const r = listenAddress.safeParse(s);
    if (r.success) return r.data;
    ctx.addIssue({ code: "custom", message: 'must be host:port or "off", e.g. 127.0.0.1:9100' });
    return z.NEVER;
  }),
  recordCipher: z.enum(["auto", "openssl", "node"], { error: () => "must be auto, openssl or node" }),
  logLevel,
  logFormat: z.enum(["json", "pretty"], { error: () => "must be json or pretty" }),
  debug: boolean,
};

/** Loads and validates the server configuration; throws ConfigError with every problem. */
export function loadServerConfig(sources: Sources): Built<ServerConfig> {
  const built = buildConfig<ServerConfig>(serverOptions, schemas, sources);
  const c = built.config;
  if (!built.help && !built.version && c.debug && !explicitLevel(sources)) c.logLevel = "debug";
  if (!built.help && !built.version && c.dbDsn && !c.secretKey) {
    throw new ConfigError([{
      variable: "HOP_SECRET_KEY",
      message: "is required with HOP_DB_DSN: every server sharing the database must seal client keys with " +
        "the same secret; make one with: openssl rand -hex 32, and set HOP_SECRET_KEY to it on each server",
    }]);
  }
  if (!built.help && !built.version && (c.tlsMode as string) === "auto") {
    c.tlsMode = isPublicDomain(c.domain) ? "acme" : "self-signed";
  }
  return built;
}

function explicitLevel(sources: Sources): boolean {
  return sources.env.HOP_LOG_LEVEL !== undefined || sources.args.some((a) => a.startsWith("--log-level"));
}
