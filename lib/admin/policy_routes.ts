/**
 * PUT/GET/DELETE /domains/{domain}/policy: a domain's access rules at the edge. Passwords are hashed
 * (bcrypt) on the way in and never returned; PUT replaces the whole policy, DELETE removes it.
 */
import { Hono } from "hono";
import { z } from "zod";
import bcrypt from "bcryptjs";
import type { DomainStore } from "../../db/domains.ts";
import type { PolicyRecord, PolicyStore, StoredPolicy } from "../../db/policies.ts";
import { parseCidr } from "../config/cidr.ts";
import { normalizeDomain } from "../config/domain.ts";
import type { Logger } from "../log/logger.ts";
import { readJsonBody } from "./body.ts";
import { ApiError } from "./errors.ts";

export interface PolicyRouteOptions {
  policies: PolicyStore;
  domains: DomainStore;
  logger: Logger;
}

/** bcrypt's cost: about 70 ms a hash here; the edge caches a verified password, so only logins pay. */
const BCRYPT_COST = 10;

/** Headers that frame or route the message: rules may not touch them. */
const RESERVED = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "upgrade",
  "te",
  "trailer",
  "keep-alive",
  "proxy-connection",
]);

const headerName = z.string().regex(
  /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/,
  "must be an HTTP header name token",
)
  .refine(
    (n) => !RESERVED.has(n.toLowerCase()),
    "is a framing header (Host, Content-Length, …) rules cannot change",
  );
const headerValue = z.string().max(8192, "must be at most 8192 characters")
  // deno-lint-ignore no-control-regex
  .refine((v) => !/[\x00\r\n]/.test(v), "must not contain CR, LF or NUL");
const headerRules = z.strictObject({
  add: z.record(z.string(), headerValue).superRefine((o, ctx) => {
    // Checked here rather than as the record's key schema, so the message names the rule broken.
    for (const k of Object.keys(o)) {
      const r = headerName.safeParse(k);
      if (!r.success) ctx.addIssue({ code: "custom", path: [k], message: r.error.issues[0].message });
    }
  }).optional(),
  remove: z.array(headerName).max(100).optional(),
});
const cidrList = z.array(
  z.string().superRefine((s, ctx) => {
    const r = parseCidr(s);
    if (typeof r === "string") {
      ctx.addIssue({ code: "custom", message: `${r}; e.g. 203.0.113.0/24 or 2001:db8::/32` });
    }
  }),
).max(1000, "at most 1000 entries");

const policyBody = z.strictObject({
  basic_auth: z.array(z.strictObject({
    username: z.string().min(1, "must not be empty").max(255)
      // deno-lint-ignore no-control-regex
      .refine((u) => !/[:\x00-\x1f\x7f]/.test(u), "must not contain ':' or control characters"),
    password: z.string().min(1, "must not be empty").max(1024),
  })).max(50, "at most 50 users").refine(
    (list) => new Set(list.map((u) => u.username)).size === list.length,
    "user names must be unique",
  ).optional(),
  ip_allow: cidrList.optional(),
  ip_deny: cidrList.optional(),
  rate_limit: z.strictObject({
    per_second: z.number().positive("must be above 0").max(1_000_000),
    burst: z.number().int("must be a whole number").min(1, "must be at least 1").max(1_000_000).optional(),
  }).optional(),
  request_headers: headerRules.optional(),
  response_headers: headerRules.optional(),
});

/** The policy as the API shows it: users without any password or hash. */
export function publicPolicy(record: PolicyRecord) {
  const { basic_auth, ...rest } = record.policy;
  return {
    domain: record.domain,
    policy: {
      ...rest,
      ...(basic_auth ? { basic_auth: basic_auth.map((u) => ({ username: u.username })) } : {}),
    },
    updated_at: record.updated_at,
  };
}

/** The routes, mounted inside the admin API (behind its key check). */
export function createPolicyRoutes(o: PolicyRouteOptions): Hono {
  const app = new Hono();
  const log = o.logger.child({ component: "admin" });
  const registered = async (param: string | undefined) => {
    const r = normalizeDomain(decodeURIComponent(param ?? ""));
    if (!r.ok) throw new ApiError(400, "invalid_domain", `domain ${r.reason}`);
    if (!(await o.domains.get(r.domain))) {
      throw new ApiError(404, "not_found", `domain ${r.domain} is not registered`);
    }
    return r.domain;
  };

  app.get("/domains/:domain/policy", async (c) => {
    const domain = await registered(c.req.param("domain"));
    const found = await o.policies.load(domain);
    if (!found) throw new ApiError(404, "not_found", `domain ${domain} has no policy`);
    return c.json(publicPolicy(found));
  });

  app.put("/domains/:domain/policy", async (c) => {
    const domain = await registered(c.req.param("domain"));
    const parsed = policyBody.safeParse(await readJsonBody(c.req.raw));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue.path.length ? `${issue.path.join(".")}: ` : "";
      throw new ApiError(400, "invalid_body", `${where}${issue.message}`);
    }
    const { basic_auth, rate_limit, ...rest } = parsed.data;
    const stored: StoredPolicy = { ...rest };
    if (rate_limit) {
      stored.rate_limit = {
        per_second: rate_limit.per_second,
        burst: rate_limit.burst ?? Math.max(1, Math.ceil(rate_limit.per_second)),
      };
    }
    if (basic_auth) {
      stored.basic_auth = await Promise.all(basic_auth.map(async (u) => ({
        username: u.username,
        password_hash: await bcrypt.hash(u.password, BCRYPT_COST),
      })));
    }
    const record = await o.policies.put(domain, stored);
    log.info({ domain, rules: Object.keys(stored) }, "policy replaced");
    return c.json(publicPolicy(record));
  });

  app.delete("/domains/:domain/policy", async (c) => {
    const domain = await registered(c.req.param("domain"));
    if (!(await o.policies.remove(domain))) {
      throw new ApiError(404, "not_found", `domain ${domain} has no policy`);
    }
    log.info({ domain }, "policy removed");
    return c.body(null, 204);
  });
  return app;
}
