/** Header rewriting at the tunnel's two edges: hop-by-hop removal and X-Forwarded-*. */
import type { HeaderLine } from "../protocol/mod.ts";

// RFC 9110 §7.6.1 connection-specific fields, plus the de-facto Proxy-Connection.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** Header lines of a Headers object or a raw list, in order; Set-Cookie stays one line per cookie. */
export function headerLines(headers: Headers | Iterable<HeaderLine>): HeaderLine[] {
  const out: HeaderLine[] = [];
  for (const [name, value] of headers) out.push([name.toLowerCase(), value]);
  return out;
}

/** Drops hop-by-hop headers and those the Connection header names; `keep` spares some (e.g. upgrade). */
export function dropHopByHop(lines: HeaderLine[], keep: ReadonlySet<string> = new Set()): HeaderLine[] {
  const named = new Set<string>();
  for (const [name, value] of lines) {
    if (name === "connection") {
      for (const token of value.split(",")) named.add(token.trim().toLowerCase());
    }
  }
  return lines.filter(([name]) => keep.has(name) || !(HOP_BY_HOP.has(name) || named.has(name)));
}

export interface ForwardedFields {
  requestId: string;
  remoteAddr: string;
  proto: "http" | "https";
  host: string;
}

/**
 * The header lines sent to the client for a browser request: hop-by-hop and Host removed
 * (the host travels in its own field), X-Forwarded-For appended to, X-Forwarded-Proto,
 * X-Forwarded-Host and X-Request-Id set. Upgrades keep `Upgrade` and get `Connection: upgrade`.
 */
export function requestHeaderLines(
  headers: Headers | Iterable<HeaderLine>,
  f: ForwardedFields,
  upgrade = false,
): HeaderLine[] {
  const lines = dropHopByHop(headerLines(headers), upgrade ? new Set(["upgrade"]) : undefined);
  const replaced = new Set(["host", "x-forwarded-proto", "x-forwarded-host", "x-request-id"]);
  const prior = lines.filter(([n]) => n === "x-forwarded-for").map(([, v]) => v.trim()).filter((v) =>
    v !== ""
  );
  const out = lines.filter(([n]) => !replaced.has(n) && n !== "x-forwarded-for");
  if (upgrade) out.push(["connection", "upgrade"]);
  out.push(
    ["x-forwarded-for", [...prior, f.remoteAddr].join(", ")],
    ["x-forwarded-proto", f.proto],
    ["x-forwarded-host", f.host],
    ["x-request-id", f.requestId],
  );
  return out;
}

/** Builds Headers from lines with append, so repeated names (Set-Cookie) stay separate. */
export function toHeaders(lines: Iterable<HeaderLine>): Headers {
  const h = new Headers();
  for (const [name, value] of lines) h.append(name, value);
  return h;
}
