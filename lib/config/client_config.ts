/** The client's configuration: option table, schemas and the typed result. */
import { z } from "zod";
import type { LogLevel } from "../log/logger.ts";
import { buildConfig, type Built } from "./build.ts";
import { ConfigError, logLevelOption, type OptionSpec, recordCipherOption, type Sources } from "./options.ts";
import {
  apiKey,
  boolean,
  dialAddress,
  domainName,
  duration,
  type ListenAddress,
  listenAddress,
  logLevel,
} from "./values.ts";

export interface ServiceTarget {
  /** Path prefix, starting with "/". */
  prefix: string;
  target: URL;
}

export interface ClientConfig {
  /** The first of serverAddrs. */
  serverAddr: ListenAddress;
  /** Every server address given (comma-separated); names are resolved to all their A/AAAA records. */
  serverAddrs: ListenAddress[];
  /** At most this many sessions, one per server address. */
  maxSessions: number;
  domain: string;
  apiKey: string;
  localTarget?: URL;
  services: ServiceTarget[];
  hostHeader: "preserve" | "rewrite";
  debug: boolean;
  /** AES-GCM backend of the DTLS record layer. */
  recordCipher: "auto" | "openssl" | "node";
  logLevel: LogLevel;
  /** auto: pretty lines on a terminal, JSON otherwise. */
  logFormat: "auto" | "json" | "pretty";
  /** Optional Prometheus /metrics listener. */
  metricsListen?: ListenAddress;
  /** The request inspector's listener; null when turned off. */
  inspectListen: ListenAddress | null;
  /** Carrier: auto (UDP, TCP when UDP does not pass), udp or tcp. */
  transport: "auto" | "udp" | "tcp";
  /** PEM file of a private CA the TCP carrier trusts besides the system roots. */
  caFile?: string;
  /** Name the server's certificate must carry when serverAddr is an IP literal. */
  serverName?: string;
  /** First background UDP re-probe after an auto fallback to TCP, in ms. */
  udpReprobeMs: number;
}

export const clientOptions: OptionSpec[] = [
  {
    key: "serverAddrs",
    flag: "server-addr",
    env: "HOP_CLIENT_SERVER_ADDR",
    description:
      "The server's address: UDP for DTLS, TCP (TLS) on the same port number; several comma-separated, or a name with several A/AAAA records (one session to each).",
    example: "hop.example.com:443",
  },
  {
    key: "maxSessions",
    flag: "max-sessions",
    env: "HOP_CLIENT_MAX_SESSIONS",
    description: "At most this many tunnel sessions, one to each server address.",
    default: "4",
    example: "2",
  },
  {
    key: "domain",
    flag: "domain",
    env: "HOP_CLIENT_DOMAIN",
    description: "The domain registered for this client.",
    example: "app.example.com",
  },
  {
    key: "apiKey",
    flag: "api-key",
    env: "HOP_CLIENT_API_KEY",
    description: "The domain's client API key (64 hex characters, from the admin API).",
    example: "<64 hex characters>",
    secret: true,
  },
  {
    key: "apiKeyFile",
    flag: "api-key-file",
    env: "HOP_CLIENT_API_KEY_FILE",
    description:
      "A file (mode 0600) holding the client key, instead of HOP_CLIENT_API_KEY: keeps it out of ps " +
      "and shell history.",
    example: "/etc/hopgate/client.key",
  },
  {
    key: "localTarget",
    flag: "local-target",
    env: "HOP_CLIENT_LOCAL_TARGET",
    description: "The local service every path goes to (unless a --service prefix matches).",
    example: "127.0.0.1:3000",
  },
  {
    key: "services",
    flag: "service",
    env: "HOP_CLIENT_SERVICES",
    description: "Path-based services PREFIX=TARGET, repeatable (environment: comma-separated).",
    default: "",
    example: "/api=127.0.0.1:8080",
    repeatable: true,
  },
  {
    key: "hostHeader",
    flag: "host-header",
    env: "HOP_CLIENT_HOST_HEADER",
    description: "preserve the public Host header, or rewrite it to the local target's.",
    default: "preserve",
    example: "rewrite",
  },
  {
    key: "metricsListen",
    flag: "metrics-listen",
    env: "HOP_CLIENT_METRICS_LISTEN",
    description: "Optional Prometheus /metrics listener (unset: none).",
    example: "127.0.0.1:9101",
  },
  {
    key: "inspectListen",
    flag: "inspect-listen",
    env: "HOP_CLIENT_INSPECT_LISTEN",
    description: "The request inspector's web page and API (off: none).",
    default: "127.0.0.1:4040",
    example: "127.0.0.1:4041",
  },
  {
    key: "transport",
    flag: "transport",
    env: "HOP_CLIENT_TRANSPORT",
    description: "auto (DTLS over UDP, TLS over TCP when UDP does not pass), udp or tcp.",
    default: "auto",
    example: "tcp",
  },
  {
    key: "caFile",
    flag: "ca-file",
    env: "HOP_CLIENT_CA_FILE",
    description:
      "PEM file of a private CA trusted for the server's TLS certificate (TCP carrier), besides the system roots.",
    example: "/etc/hopgate/ca.crt",
  },
  {
    key: "serverName",
    flag: "server-name",
    env: "HOP_CLIENT_SERVER_NAME",
    description:
      "Host name the server's certificate must carry when HOP_CLIENT_SERVER_ADDR is an IP address.",
    example: "hop.example.com",
  },
  {
    key: "udpReprobeMs",
    flag: "udp-reprobe",
    env: "HOP_CLIENT_UDP_REPROBE",
    description: "After falling back to TCP, first retry of UDP in the background (doubles up to 8x).",
    default: "60s",
    example: "5m",
  },
  recordCipherOption,
  logLevelOption,
  {
    key: "logFormat",
    flag: "log-format",
    env: "HOP_LOG_FORMAT",
    description: "auto (pretty on a terminal, JSON otherwise), json or pretty.",
    default: "auto",
    example: "json",
  },
  {
    key: "debug",
    flag: "debug",
    env: "HOP_CLIENT_DEBUG",
    description: "Debug mode: log level debug unless HOP_LOG_LEVEL says otherwise.",
    default: "false",
    example: "true",
    boolean: true,
  },
];

/** "127.0.0.1:3000", "3000" or a full http(s) URL (h2c://host:port for HTTP/2 without TLS) → a URL. */
export function parseTarget(s: string): URL | string {
  const v = s.trim();
  if (/^\d{1,5}$/.test(v)) return parseTarget(`127.0.0.1:${v}`);
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? v : `http://${v}`;
  try {
    const u = new URL(withScheme);
    if (u.protocol !== "http:" && u.protocol !== "https:" && u.protocol !== "h2c:") {
      return "must use http, https or h2c (HTTP/2 without TLS, e.g. h2c://127.0.0.1:50051)";
    }
    if (!u.port && !/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) return "needs a port, e.g. 127.0.0.1:3000";
    return u;
  } catch {
    return "must be host:port or a URL, e.g. 127.0.0.1:3000 or http://127.0.0.1:3000";
  }
}

const target = z.string().transform((s, ctx) => {
  const r = parseTarget(s);
  if (typeof r === "string") {
    ctx.addIssue({ code: "custom", message: r });
    return z.NEVER;
  }
  return r;
});

const services = z.string().transform((s, ctx): ServiceTarget[] => {
  const out: ServiceTarget[] = [];
  for (const item of s.split(",").map((x) => x.trim()).filter(Boolean)) {
    const eq = item.indexOf("=");
    const prefix = eq > 0 ? item.slice(0, eq) : "";
    const t = eq > 0 ? parseTarget(item.slice(eq + 1)) : "missing =TARGET";
    if (!prefix.startsWith("/")) {
      ctx.addIssue({
        code: "custom",
        message: `service "${item}" must be PREFIX=TARGET with PREFIX starting with /`,
      });
      return z.NEVER;
    }
    if (typeof t === "string") {
      ctx.addIssue({ code: "custom", message: `service "${item}": target ${t}` });
      return z.NEVER;
    }
    out.push({ prefix, target: t });
  }
  return out;
});

const dialAddresses = z.string().transform((s, ctx): ListenAddress[] => {
  const out: ListenAddress[] = [];
  for (const item of s.split(",").map((x) => x.trim()).filter(Boolean)) {
    const r = dialAddress.safeParse(item);
    if (!r.success) {
      ctx.addIssue({ code: "custom", message: `"${item}" must be host:port, e.g. hop.example.com:443` });
      return z.NEVER;
    }
    out.push(r.data);
  }
  if (out.length === 0) {
    ctx.addIssue({ code: "custom", message: "must be host:port, e.g. hop.example.com:443" });
    return z.NEVER;
  }
  return out;
});

const schemas = {
  serverAddrs: dialAddresses,
  maxSessions: z.string().transform((s, ctx) => {
    const n = Number(s.trim());
    if (!/^\d+$/.test(s.trim()) || n < 1 || n > 64) {
      ctx.addIssue({ code: "custom", message: "must be a whole number from 1 to 64" });
      return z.NEVER;
    }
    return n;
  }),
  domain: domainName,
  apiKey: apiKey.optional(),
  apiKeyFile: z.string().min(1, "must not be empty").optional(),
  localTarget: target.optional(),
  services,
  hostHeader: z.enum(["preserve", "rewrite"], { error: () => "must be preserve or rewrite" }),
  metricsListen: listenAddress.optional(),
  inspectListen: z.union([z.literal("off").transform(() => null), listenAddress]),
  transport: z.enum(["auto", "udp", "tcp"], { error: () => "must be auto, udp or tcp" }),
  caFile: z.string().min(1, "must not be empty").optional(),
  serverName: domainName.optional(),
  udpReprobeMs: duration,
  recordCipher: z.enum(["auto", "openssl", "node"], { error: () => "must be auto, openssl or node" }),
  logLevel,
  logFormat: z.enum(["auto", "json", "pretty"], { error: () => "must be auto, json or pretty" }),
  debug: boolean,
};

/** Loads and validates the client configuration; throws ConfigError with every problem. */
export function loadClientConfig(sources: Sources): Built<ClientConfig> {
  const built = buildConfig<ClientConfig>(clientOptions, schemas, {
    ...sources,
    args: httpShorthand(sources.args),
    userConfigFile: sources.userConfigFile ?? userConfigPath(sources.env),
  });
  if (built.help || built.version) return built;
  const c = built.config;
  c.serverAddr = c.serverAddrs[0];
  c.apiKey = resolveApiKey(c.apiKey, (c as { apiKeyFile?: string }).apiKeyFile);
  if (!c.localTarget && !c.services.some((s) => s.prefix === "/")) {
    throw new ConfigError([{
      variable: "HOP_CLIENT_LOCAL_TARGET",
      message: "is required (or a --service /=TARGET); set it like HOP_CLIENT_LOCAL_TARGET=127.0.0.1:3000",
    }]);
  }
  if (
    c.debug && sources.env.HOP_LOG_LEVEL === undefined &&
    !sources.args.some((a) => a.startsWith("--log-level"))
  ) {
    c.logLevel = "debug";
  }
  return built;
}

/** The key from HOP_CLIENT_API_KEY or the file HOP_CLIENT_API_KEY_FILE names (exactly one of them). */
function resolveApiKey(key: string | undefined, file: string | undefined): string {
  if (key !== undefined && file !== undefined) {
    throw new ConfigError([{
      variable: "HOP_CLIENT_API_KEY_FILE",
      message:
        "and HOP_CLIENT_API_KEY are both set; keep only the file (it stays out of ps and shell history)",
    }]);
  }
  if (key !== undefined) return key;
  if (file === undefined) {
    throw new ConfigError([{
      variable: "HOP_CLIENT_API_KEY",
      message: "is required; set it like HOP_CLIENT_API_KEY=<64 hex characters>, or put the key in a file " +
        "named by HOP_CLIENT_API_KEY_FILE",
    }]);
  }
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    throw new ConfigError([{
      variable: "HOP_CLIENT_API_KEY_FILE",
      message: `${file} cannot be read: ${
        (e as Error).message
      } (give a file holding the 64-hex-character key)`,
    }]);
  }
  const r = apiKey.safeParse(text);
  if (!r.success) {
    throw new ConfigError([{
      variable: "HOP_CLIENT_API_KEY_FILE",
      message: `${file} ${r.error.issues[0]?.message ?? "is not a client key"}`,
    }]);
  }
  return r.data;
}

/** Every service the client serves, the local target as "/" last: longest prefix first. */
export function allServices(c: ClientConfig): ServiceTarget[] {
  const list = [...c.services];
  if (c.localTarget && !list.some((s) => s.prefix === "/")) list.push({ prefix: "/", target: c.localTarget });
  return list.sort((a, b) => b.prefix.length - a.prefix.length);
}

/** The per-user config file: $XDG_CONFIG_HOME/hopgate/client.env, else ~/.config/hopgate/client.env. */
export function userConfigPath(env: Record<string, string | undefined>): string | undefined {
  const base = env.XDG_CONFIG_HOME || (env.HOME ? `${env.HOME}/.config` : undefined);
  return base ? `${base}/hopgate/client.env` : undefined;
}

/** `http TARGET [flags]` → `--local-target=TARGET [flags]`; other argument lists are left alone. */
export function httpShorthand(args: string[]): string[] {
  if (args[0] !== "http") return args;
  const target = args[1];
  if (target === undefined || target.startsWith("-")) {
    throw new ConfigError([{
      variable: "http",
      message: "needs the local target, e.g. hopgate-client http 3000 (or 127.0.0.1:8080, http://host:port)",
    }]);
  }
  return [`--local-target=${target}`, ...args.slice(2)];
}
