/**
 * Header rewriting at the tunnel's edges: hop-by-hop removal (RFC 9110 §7.6.1) and X-Forwarded-*.
 * Lines keep their order, their names' case and their duplicates; only what is named here changes.
 */
import type { HeaderLine } from "../protocol/body.ts";

// RFC 9110 §7.6.1 connection-specific fields (Trailer is end-to-end there, unlike RFC 2616), plus the
// de-facto Proxy-Connection, and the credentials a client meant for a proxy, never for the origin.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "transfer-encoding",
  "upgrade",
]);

/** RFC 9113 §8.2.2: fields HTTP/2 forbids (connection-specific), never written on an HTTP/2 stream. */
export const H2_CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);

/** Client-address headers a browser could forge: replaced or dropped unless the peer is a trusted proxy. */
const FORWARDING = new Set(["x-forwarded-for", "x-real-ip", "forwarded", "true-client-ip"]);
/** Set by the tunnel on every request, whoever sent them before. */
const SET_BY_TUNNEL = new Set(["x-forwarded-proto", "x-forwarded-host", "x-request-id"]);

/** The field names the Connection lines list (lower case), or undefined without a Connection line. */
function connectionTokens(lines: HeaderLine[]): Set<string> | undefined {
  let named: Set<string> | undefined;
  for (const [name, value] of lines) {
    if (name.length !== 10 || name.toLowerCase() !== "connection") continue;
    named ??= new Set();
    for (const token of value.split(",")) named.add(token.trim().toLowerCase());
  }
  return named;
}

function isHopByHop(
  lower: string,
  named: Set<string> | undefined,
  keep: ReadonlySet<string> | undefined,
): boolean {
  return (HOP_BY_HOP.has(lower) || named?.has(lower) === true) && keep?.has(lower) !== true;
}

/** Drops hop-by-hop lines and those the Connection header names; `keep` spares some (lower case, e.g. upgrade). */
export function dropHopByHop(lines: HeaderLine[], keep?: ReadonlySet<string>): HeaderLine[] {
  const named = connectionTokens(lines);
  let out: HeaderLine[] | undefined;
  for (let i = 0; i < lines.length; i++) {
    const drop = isHopByHop(lines[i][0].toLowerCase(), named, keep);
    // Copied only from the first line dropped: most answers keep every line but Connection.
    if (drop && out === undefined) out = lines.slice(0, i);
    else if (!drop && out !== undefined) out.push(lines[i]);
  }
  return out ?? lines;
}

export interface ForwardedFields {
  requestId: string;
  remoteAddr: string;
  proto: "http" | "https";
  /** The public host (with its port) the browser asked for. */
  host: string;
  /** The peer is a trusted proxy: its X-Forwarded-For and friends are kept and appended to. */
  trustedPeer: boolean;
}

/**
 * The header lines sent to the client for a browser request: the browser's lines in order (Host
 * included), minus hop-by-hop ones, with X-Forwarded-For (the peer's address, appended to a trusted
 * proxy's list), X-Forwarded-Proto, X-Forwarded-Host and X-Request-Id. From an untrusted peer,
 * X-Real-IP, Forwarded and True-Client-IP are dropped. Upgrades keep `Upgrade` and `Connection: upgrade`.
 */
export function requestHeaderLines(lines: HeaderLine[], f: ForwardedFields, upgrade = false): HeaderLine[] {
  const named = connectionTokens(lines);
  const keep = upgrade ? UPGRADE_KEEP : undefined;
  const out: HeaderLine[] = [];
  const prior: string[] = [];
  for (const line of lines) {
    const n = line[0].toLowerCase();
    if (isHopByHop(n, named, keep) || SET_BY_TUNNEL.has(n)) continue;
    if (FORWARDING.has(n)) {
      if (!f.trustedPeer) continue;
      if (n === "x-forwarded-for") {
        const v = line[1].trim();
        if (v !== "") prior.push(v);
        continue;
      }
    }
    out.push(line);
  }
  if (upgrade) out.push(["Connection", "upgrade"]);
  prior.push(f.remoteAddr);
  out.push(
    ["X-Forwarded-For", prior.join(", ")],
    ["X-Forwarded-Proto", f.proto],
    ["X-Forwarded-Host", f.host],
    ["X-Request-Id", f.requestId],
  );
  return out;
}

const UPGRADE_KEEP: ReadonlySet<string> = new Set(["upgrade"]);

/** The value of the first line named `name` (lower case), or undefined. */
export function headerValue(lines: readonly HeaderLine[], name: string): string | undefined {
  for (const [n, v] of lines) if (n.length === name.length && n.toLowerCase() === name) return v;
  return undefined;
}
