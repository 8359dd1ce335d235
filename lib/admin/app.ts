/**
 * The admin REST API (Hono), mounted at /api/v1/admin: register, list, get, delete domains and
 * rotate their client keys, plus the Go HopGate's register/unregister calls for its scripts.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { z } from "zod";
import { normalizeDomain } from "../config/domain.ts";
import { type DomainStore, DomainTakenError } from "../../db/domains.ts";
import type { Logger } from "../log/logger.ts";
import { silentLogger } from "../log/logger.ts";
import { isAuthorized } from "./auth.ts";
import type { AuthGuard } from "./auth_guard.ts";
// Bodies are read through readJsonBody, not Hono's bodyLimit: it is the one reader (policy_routes.ts
// too) and caps a streamed body as it reads, after the Content-Type check; bodyLimit would buffer a copy
// into a new Request and answer 413 before 415.
import { readJsonBody } from "./body.ts";
import { ApiError, errorBody } from "./errors.ts";
import { openApiDocument } from "./openapi.ts";
import type { PolicyStore } from "../../db/policies.ts";
import { createPolicyRoutes } from "./policy_routes.ts";
import { createServersRoutes, type ServerSummary } from "./servers_routes.ts";
import type { CertificateState } from "../tls/renewal_scheduler.ts";

/** A connected tunnel session, as GET /domains/{domain} lists it. */
export interface SessionSummary {
  id: string;
  remote_address: string;
  connected_since: string;
  requests_served: number;
  /** udp (DTLS) or tcp (the TLS fallback carrier). */
  carrier?: "udp" | "tcp";
  /** The server holding it (several servers on one database). */
  server_id?: string;
}

/** A domain's TLS certificate (ACME mode), as GET /domains/{domain} shows it: the scheduler's state without the host. */
export type CertificateSummary = Omit<CertificateState, "hostname">;

export interface AdminHooks {
  /** The domain's certificate; absent when the TLS mode issues none (self-signed, off). */
  certificate?(domain: string): CertificateSummary | null;
  /** Orders a new certificate for the domain now; returns its state (absent outside ACME mode). */
  renewCertificate?(domain: string): CertificateSummary | null | Promise<CertificateSummary | null>;
  /** Live sessions of a domain (on every server sharing the database). */
  sessions?(domain: string): SessionSummary[] | Promise<SessionSummary[]>;
  /** The live servers sharing the database (GET /servers). */
  servers?(): Promise<ServerSummary[]>;
  /** Called after a domain was removed or its key rotated, so its sessions close at once. */
  domainChanged?(domain: string, change: "removed" | "key_rotated"): void | Promise<void>;
  /** Called after a domain was registered. */
  domainAdded?(domain: string): void | Promise<void>;
}

export interface AdminOptions {
  store: DomainStore;
  adminApiKey: string;
  /** The server's own domain, which cannot be registered. */
  serverDomain: string;
  logger?: Logger;
  hooks?: AdminHooks;
  /** Per-domain access rules (PUT/GET/DELETE /domains/{domain}/policy); absent: no such routes. */
  policies?: PolicyStore;
  /** Rate limit of failed bearer attempts per address; absent: none. */
  guard?: AuthGuard;
  /** The requesting peer's address (the front knows it, the Request does not). */
  clientAddress?: (request: Request) => string;
}

const registerBody = z.strictObject({
  domain: z.string(),
  memo: z.string().max(1000, "memo must be at most 1000 characters").optional(),
});

const legacyRegisterBody = z.object({ domain: z.string(), memo: z.string().max(1000).optional() });
const legacyUnregisterBody = z.object({ domain: z.string(), client_api_key: z.string() });

function validDomain(input: unknown, serverDomain: string): string {
  const r = normalizeDomain(input);
  if (!r.ok) throw new ApiError(400, "invalid_domain", `domain ${r.reason}`);
  if (r.domain === serverDomain) {
    throw new ApiError(400, "invalid_domain", "domain is the server's own domain and cannot be registered");
  }
  return r.domain;
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue.path.length ? `${issue.path.join(".")}: ` : "";
  throw new ApiError(400, "invalid_body", `${where}${issue.message}`);
}

/** Builds the admin API. Mount it with `app.route("/api/v1/admin", createAdminApi(...))`. */
export function createAdminApi(options: AdminOptions): Hono {
  const { store, hooks = {} } = options;
  const log = (options.logger ?? silentLogger).child({ component: "admin" });
  const app = new Hono();

  const internal = (err: Error, c: Context) => {
    log.error({ err: { message: err.message, stack: err.stack } }, "admin request failed");
    return c.json(errorBody("internal", "internal error"), 500);
  };
  app.onError((err, c) =>
    err instanceof ApiError ? c.json(errorBody(err.code, err.message), err.status) : internal(err, c)
  );
  app.notFound((c) => c.json(errorBody("not_found", `no route ${c.req.method} ${c.req.path}`), 404));

  // Not Hono's bearerAuth: its comparison is async (crypto.subtle), so the guard's check and its record
  // of a failure would not happen in one turn of the event loop and parallel guesses could all pass the
  // check first (see auth.ts); it also answers a malformed header with 400 and its own bodies, where
  // the API has the one 401 body, and it cannot tell the guard why an attempt failed.
  app.use("*", async (c, next) => {
    const guard = options.guard;
    const address = options.clientAddress?.(c.req.raw) || "unknown";
    const wait = guard?.retryAfter(address) ?? 0;
    if (guard && wait > 0) {
      guard.limited(address);
      c.header("retry-after", String(wait));
      return c.json(errorBody("rate_limited", `too many failed attempts; retry in ${wait} s`), 429);
    }
    const header = c.req.header("authorization") ?? null;
    if (!isAuthorized(header, options.adminApiKey)) {
      const reason = header === null ? "missing key" : "wrong key";
      guard?.failed(address, { method: c.req.method, path: c.req.path, reason });
      return c.json(errorBody("unauthorized", "missing or wrong admin API key"), 401);
    }
    await next();
  });

  const domainParam = (c: Context) => {
    let raw: string;
    try {
      raw = decodeURIComponent(c.req.param("domain") ?? "");
    } catch {
      throw new ApiError(400, "invalid_domain", "domain is not valid percent-encoding");
    }
    return validDomain(raw, options.serverDomain);
  };

  if (hooks.servers) app.route("/", createServersRoutes({ servers: hooks.servers }));

  // The Go HopGate's calls, for its scripts: a sub-app whose errors take the Go server's shape.
  const legacy = new Hono();
  legacy.onError((err, c) =>
    err instanceof ApiError ? c.json({ success: false, error: err.message }, err.status) : internal(err, c)
  );
  legacy.post("/register", async (c) => {
    const body = parse(legacyRegisterBody, await readJsonBody(c.req.raw));
    const domain = validDomain(body.domain, options.serverDomain);
    const issued = await register(domain, body.memo ?? "");
    return c.json({ success: true, client_api_key: issued.client_api_key });
  });
  legacy.post("/unregister", async (c) => {
    const body = parse(legacyUnregisterBody, await readJsonBody(c.req.raw));
    const domain = validDomain(body.domain, options.serverDomain);
    if (!(await store.keyMatches(domain, body.client_api_key))) {
      throw new ApiError(404, "not_found", "no such domain with that client API key");
    }
    await remove(domain);
    return c.json({ success: true });
  });
  app.route("/domains", legacy);

  app.post("/domains", async (c) => {
    const body = parse(registerBody, await readJsonBody(c.req.raw));
    const domain = validDomain(body.domain, options.serverDomain);
    return c.json(await register(domain, body.memo ?? ""), 201);
  });

  app.get("/domains", async (c) => c.json({ domains: await store.list() }));

  app.get("/domains/:domain", async (c) => {
    const domain = domainParam(c);
    const found = await store.get(domain);
    if (!found) throw new ApiError(404, "not_found", `domain ${domain} is not registered`);
    return c.json({
      ...found,
      sessions: (await hooks.sessions?.(domain)) ?? [],
      certificate: hooks.certificate?.(domain) ?? null,
    });
  });

  app.post("/domains/:domain/renew-certificate", async (c) => {
    const domain = domainParam(c);
    if (!hooks.renewCertificate) {
      throw new ApiError(
        409,
        "not_acme",
        "certificates are renewed only in ACME mode (HOP_SERVER_TLS_MODE=acme)",
      );
    }
    if (!(await store.get(domain))) {
      throw new ApiError(404, "not_found", `domain ${domain} is not registered`);
    }
    const state = await hooks.renewCertificate(domain);
    log.info({ domain }, "certificate renewal requested");
    return c.json({ certificate: state }, 202);
  });

  app.delete("/domains/:domain", async (c) => {
    const domain = domainParam(c);
    if (!(await remove(domain))) throw new ApiError(404, "not_found", `domain ${domain} is not registered`);
    return c.body(null, 204);
  });

  app.post("/domains/:domain/rotate-key", async (c) => {
    const domain = domainParam(c);
    const rotated = await store.rotateKey(domain);
    if (!rotated) throw new ApiError(404, "not_found", `domain ${domain} is not registered`);
    log.info({ domain }, "client key rotated");
    await hooks.domainChanged?.(domain, "key_rotated");
    return c.json(rotated);
  });

  if (options.policies) {
    app.route("/", createPolicyRoutes({ policies: options.policies, domains: store, logger: log }));
  }

  async function register(domain: string, memo: string) {
    try {
      const issued = await store.register(domain, memo);
      log.info({ domain }, "domain registered");
      await hooks.domainAdded?.(domain);
      return issued;
    } catch (e) {
      if (e instanceof DomainTakenError) throw new ApiError(409, "domain_taken", e.message);
      throw e;
    }
  }

  async function remove(domain: string): Promise<boolean> {
    const removed = await store.remove(domain);
    if (removed) {
      log.info({ domain }, "domain removed");
      await hooks.domainChanged?.(domain, "removed");
    }
    return removed;
  }

  return app;
}

/** The server's API root: the admin API and its OpenAPI document. */
export function createApiRoutes(options: AdminOptions): Hono {
  const api = new Hono();
  api.get("/openapi.json", (c) => c.json(openApiDocument(options.serverDomain)));
  api.route("/admin", createAdminApi(options));
  return api;
}
