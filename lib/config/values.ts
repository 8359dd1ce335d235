/** zod schemas for the value kinds that configuration is made of. Each message says what a valid value looks like. */
import { z } from "zod";
import { normalizeDomain } from "./domain.ts";

export interface ListenAddress {
  hostname: string;
  port: number;
}

/** "host:port", ":port" (all interfaces) or "[v6]:port"; port 0 picks a free one. */
export const listenAddress = z.string().transform((s, ctx): ListenAddress => {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]*)):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    ctx.addIssue({ code: "custom", message: `must be host:port or :port, e.g. 0.0.0.0:443 or :443` });
    return z.NEVER;
  }
  return { hostname: m[1] ?? (m[2] || "0.0.0.0"), port };
});

/** "host:port" where host is required (a place to dial). */
export const dialAddress = z.string().transform((s, ctx): ListenAddress => {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) {
    ctx.addIssue({ code: "custom", message: `must be host:port, e.g. hop.example.com:443` });
    return z.NEVER;
  }
  return { hostname: m[1] ?? m[2], port };
});

export const domainName = z.string().transform((s, ctx) => {
  const r = normalizeDomain(s);
  if (!r.ok) {
    ctx.addIssue({ code: "custom", message: `${r.reason}; e.g. hop.example.com` });
    return z.NEVER;
  }
  return r.domain;
});

export const boolean = z.string().transform((s, ctx) => {
  const v = s.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(v)) return true;
  if (["0", "false", "no", "off", ""].includes(v)) return false;
  ctx.addIssue({ code: "custom", message: "must be true or false" });
  return z.NEVER;
});

/** A duration: "500ms", "30s", "5m", "1h" or a plain number of seconds; in milliseconds. */
export const duration = z.string().transform((s, ctx) => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m || Number(m[1]) <= 0) {
    ctx.addIssue({ code: "custom", message: "must be a positive duration like 500ms, 30s, 5m or 60" });
    return z.NEVER;
  }
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? "s") as "ms" | "s" | "m" | "h"];
  return Number(m[1]) * unit;
});

export const logLevel = z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"], {
  error: () => "must be one of trace, debug, info, warn, error, fatal, silent",
});

/** A client API key: 64 hex characters (32 random bytes). */
export const apiKey = z.string().transform((s, ctx) => {
  const v = s.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(v)) {
    ctx.addIssue({
      code: "custom",
      message: `must be 64 hex characters (got ${v.length}${
        /^[0-9a-fA-F]*$/.test(v) ? "" : ", not all hex"
      })`,
    });
    return z.NEVER;
  }
  return v.toLowerCase();
});

export const postgresDsn = z.string().transform((s, ctx) => {
  const v = s.trim();
  let ok = false;
  try {
    const u = new URL(v);
    ok = (u.protocol === "postgres:" || u.protocol === "postgresql:") && u.hostname !== "";
  } catch { /* reported below */ }
  if (!ok) {
    ctx.addIssue({
      code: "custom",
      message: "must be a URL like postgres://user:password@127.0.0.1:5432/hopgate",
    });
    return z.NEVER;
  }
  return v;
});
