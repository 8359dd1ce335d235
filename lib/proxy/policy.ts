/**
 * A domain's access rules at the edge, evaluated before a request enters the tunnel, so a denied
 * request costs the client nothing. Order: IP deny, IP allow, rate limit, basic auth (the cheap
 * checks first, so a flood of guessed passwords meets the rate limit before any bcrypt work).
 */
import { createHash } from "node:crypto";
import bcrypt from "bcryptjs";
import type { StoredHeaderRules, StoredPolicy } from "../../db/policies.ts";
import { type Cidr, cidrContains, parseCidr, parseIp } from "../config/cidr.ts";
import type { HeaderLine } from "../protocol/body.ts";
import { createRateLimiter, type RateLimiter } from "./policy_rate.ts";

/** Why a request was refused; the metrics label. */
export type DenyReason = "ip_deny" | "ip_allow" | "rate_limit" | "basic_auth";

/** Header edits: names removed (lower-case), then lines added (replacing any of that name). */
export interface HeaderEdits {
  remove: string[];
  add: HeaderLine[];
}

export type PolicyDecision =
  | { allow: true; requestHeaders: HeaderEdits }
  | {
    allow: false;
    status: 401 | 403 | 429;
    reason: DenyReason;
    /** The rule that matched, for the log line. */
    rule: string;
    /** WWW-Authenticate (401) or Retry-After (429). */
    headers: HeaderLine[];
  };

export interface CompiledPolicy {
  readonly stored: StoredPolicy;
  readonly deny: { text: string; cidr: Cidr }[];
  readonly allow: { text: string; cidr: Cidr }[];
  readonly limiter: RateLimiter | null;
  readonly users: Map<string, string[]>;
  readonly requestEdits: HeaderEdits;
  readonly responseEdits: HeaderEdits;
  readonly realm: string;
  /** Verified credentials: digest of user and password → verdict and expiry (ms). */
  readonly verified: Map<string, { ok: boolean; until: number }>;
  /** Verifications in progress, by the same digest. */
  readonly verifying: Map<string, Promise<boolean>>;
}

export interface RequestFacts {
  /** The peer's address as the socket reports it (IPv4, IPv6 or IPv4-mapped IPv6). */
  remoteAddr: string;
  headers: HeaderLine[];
}

export interface CompileOptions {
  /** The basic-auth realm (the domain). */
  realm?: string;
  maxBuckets?: number;
}

/** A correct password is trusted this long without hashing again; a wrong one is refused as long. */
const GOOD_FOR_MS = 5 * 60_000;
const BAD_FOR_MS = 10_000;
const VERIFIED_MAX = 1000;
/** Compared against when the user name is unknown, so timing does not tell which names exist. */
let dummyHash: Promise<string> | undefined;

function edits(rules: StoredHeaderRules | undefined): HeaderEdits {
  const add = Object.entries(rules?.add ?? {}) as HeaderLine[];
  const remove = [...(rules?.remove ?? []), ...add.map(([k]) => k)].map((k) => k.toLowerCase());
  return { remove: [...new Set(remove)], add };
}

function cidrs(list: string[] | undefined): { text: string; cidr: Cidr }[] {
  return (list ?? []).map((text) => {
    const cidr = parseCidr(text);
    if (typeof cidr === "string") throw new Error(`policy CIDR ${text}: ${cidr}`);
    return { text, cidr };
  });
}

/** Compiles a stored policy once per change; the result holds the rate buckets and the auth cache. */
export function compilePolicy(stored: StoredPolicy, options: CompileOptions = {}): CompiledPolicy {
  const users = new Map<string, string[]>();
  for (const u of stored.basic_auth ?? []) {
    users.set(u.username, [...(users.get(u.username) ?? []), u.password_hash]);
  }
  const rl = stored.rate_limit;
  return {
    stored,
    deny: cidrs(stored.ip_deny),
    allow: cidrs(stored.ip_allow),
    limiter: rl ? createRateLimiter(rl.per_second, rl.burst, options.maxBuckets) : null,
    users,
    requestEdits: edits(stored.request_headers),
    responseEdits: edits(stored.response_headers),
    realm: options.realm ?? "HopGate",
    verified: new Map(),
    verifying: new Map(),
  };
}

/** The rate-limit key: an IPv4 address, or an IPv6 /64 (one host usually holds a whole /64). */
function clientKey(ip: Uint8Array | null, raw: string): string {
  if (!ip) return `raw:${raw}`;
  const mapped = ip.subarray(0, 12).every((b, i) => (i < 10 ? b === 0 : b === 0xff));
  const bytes = mapped ? ip : ip.subarray(0, 8);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function header(headers: HeaderLine[], name: string): string | undefined {
  return headers.find(([k]) => k.toLowerCase() === name)?.[1];
}

/** user and password from "Basic base64(user:password)" (RFC 7617, UTF-8), or null. */
export function parseBasicAuth(value: string | undefined): { username: string; password: string } | null {
  const m = value && /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(value);
  if (!m) return null;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(
      Uint8Array.from(atob(m[1]), (c) => c.charCodeAt(0)),
    );
  } catch {
    return null;
  }
  const colon = text.indexOf(":");
  return colon < 0 ? null : { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

function passwordOk(
  policy: CompiledPolicy,
  username: string,
  password: string,
  now: number,
): Promise<boolean> {
  const key = createHash("sha256").update(username).update("\0").update(password).digest("hex");
  const hit = policy.verified.get(key);
  if (hit && hit.until > now) return Promise.resolve(hit.ok);
  // Requests arriving together with the same credentials share one bcrypt run.
  const running = policy.verifying.get(key);
  if (running) return running;
  const verdict = (async () => {
    const hashes = policy.users.get(username);
    let ok = false;
    if (!hashes) await bcrypt.compare(password, await (dummyHash ??= bcrypt.hash(crypto.randomUUID(), 10)));
    else {
      for (const h of hashes) if (await bcrypt.compare(password, h)) ok = true;
    }
    policy.verified.delete(key);
    policy.verified.set(key, { ok, until: now + (ok ? GOOD_FOR_MS : BAD_FOR_MS) });
    if (policy.verified.size > VERIFIED_MAX) policy.verified.delete(policy.verified.keys().next().value!);
    return ok;
  })().finally(() => policy.verifying.delete(key));
  policy.verifying.set(key, verdict);
  return verdict;
}

/** Decides one request at `now` (ms). */
export async function checkRequest(
  policy: CompiledPolicy,
  req: RequestFacts,
  now: number,
): Promise<PolicyDecision> {
  const ip = parseIp(req.remoteAddr);
  const deny = (status: 401 | 403 | 429, reason: DenyReason, rule: string, headers: HeaderLine[] = []) => ({
    allow: false as const,
    status,
    reason,
    rule,
    headers,
  });
  const hit = ip && policy.deny.find((d) => cidrContains(d.cidr, ip));
  if (hit) return deny(403, "ip_deny", `ip_deny ${hit.text}`);
  if (policy.allow.length > 0 && !(ip && policy.allow.some((a) => cidrContains(a.cidr, ip)))) {
    return deny(403, "ip_allow", "ip_allow (no entry matches)");
  }
  if (policy.limiter) {
    const r = policy.limiter.take(clientKey(ip, req.remoteAddr), now);
    if (!r.ok) {
      const rl = policy.stored.rate_limit!;
      return deny(429, "rate_limit", `rate_limit ${rl.per_second}/s burst ${rl.burst}`, [[
        "Retry-After",
        String(Math.max(1, Math.ceil(r.retryAfterMs / 1000))),
      ]]);
    }
  }
  const requestHeaders: HeaderEdits = {
    remove: [...policy.requestEdits.remove],
    add: policy.requestEdits.add,
  };
  if (policy.users.size > 0) {
    const creds = parseBasicAuth(header(req.headers, "authorization"));
    if (!creds || !(await passwordOk(policy, creds.username, creds.password, now))) {
      const realm = policy.realm.replace(/["\\]/g, "");
      return deny(
        401,
        "basic_auth",
        creds
          ? `basic_auth (wrong password for ${JSON.stringify(creds.username)})`
          : "basic_auth (no credentials)",
        [[
          "WWW-Authenticate",
          `Basic realm="${realm}", charset="UTF-8"`,
        ]],
      );
    }
    // The edge consumed the credentials: the origin never sees the edge password.
    if (!requestHeaders.remove.includes("authorization")) requestHeaders.remove.push("authorization");
  }
  return { allow: true, requestHeaders };
}

/** The code and sentence of a denial's branded page (or JSON body); never names the rule that matched. */
export function denialText(d: Extract<PolicyDecision, { allow: false }>): { code: string; message: string } {
  switch (d.reason) {
    case "basic_auth":
      return { code: "unauthorized", message: "This site asks for a user name and password." };
    case "rate_limit": {
      const wait = d.headers.find(([k]) => k === "Retry-After")?.[1] ?? "1";
      return {
        code: "rate_limited",
        message: `Too many requests from your address; try again in ${wait} s.`,
      };
    }
    default:
      return { code: "forbidden", message: "Access from your address is not allowed." };
  }
}

/**
 * The client's address: the peer's, or, when the peer is a trusted proxy, the nearest X-Forwarded-For
 * entry that is not itself one (entries further left are the client's own claims and prove nothing).
 */
export function clientAddress(
  remoteAddr: string,
  headers: HeaderLine[],
  isTrustedProxy?: (address: string) => boolean,
): string {
  if (!isTrustedProxy?.(remoteAddr)) return remoteAddr;
  const chain = headers.filter(([k]) => k.toLowerCase() === "x-forwarded-for")
    .flatMap(([, v]) => v.split(",")).map((s) => s.trim()).filter(Boolean);
  for (let i = chain.length - 1; i >= 0; i--) {
    if (!parseIp(chain[i])) return remoteAddr;
    if (!isTrustedProxy(chain[i])) return chain[i];
  }
  return chain[0] ?? remoteAddr;
}

/** Applies header edits to a header list (removals first, then additions at the end). */
export function applyHeaderEdits(headers: HeaderLine[], e: HeaderEdits): HeaderLine[] {
  if (e.remove.length === 0 && e.add.length === 0) return headers;
  const removed = new Set(e.remove);
  return [...headers.filter(([k]) => !removed.has(k.toLowerCase())), ...e.add];
}

/** The response headers after the policy's response rules. */
export function applyResponseHeaders(policy: CompiledPolicy, headers: HeaderLine[]): HeaderLine[] {
  return applyHeaderEdits(headers, policy.responseEdits);
}
