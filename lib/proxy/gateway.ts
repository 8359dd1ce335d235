/**
 * The server's request handling behind the fronts: the server's own domain gets the admin app
 * (through the Web bridge), a registered domain goes through its tunnel on the raw request, anything
 * else gets a 404 page. Also the access log line per request, request ids, and the retry of a
 * bodiless request whose session died before answering.
 */
import type { Logger } from "../log/logger.ts";
import { pathOf } from "./prefix.ts";
import type { HeaderLine } from "../protocol/body.ts";
import { headerValue } from "./headers.ts";
import { TunnelDroppedError } from "./errors.ts";
import { writeErrorPage, writeTunnelError } from "./error_response.ts";
import type { FrontHandler, FrontRequest, FrontResponse } from "./front_types.ts";
import type { SessionRegistry, TunnelSession } from "./registry.ts";
import { type ForwardOutcome, forwardRequest } from "./server_forward.ts";
import { serveWeb } from "./web_bridge.ts";
import { InFlight } from "./in_flight.ts";
import { forwardToPeer, PEER_HEADER, type PeerForwarding } from "./peer_forward.ts";
import {
  applyHeaderEdits,
  applyResponseHeaders,
  checkRequest,
  clientAddress,
  type CompiledPolicy,
  denialText,
} from "./policy.ts";

export interface GatewayOptions {
  serverDomain: string;
  /** Also answer the server's own routes for `localhost` and IP literals (dev mode only). */
  ownAddressHosts: boolean;
  /** The server's own routes (admin API, health), with the peer's address. */
  ownApp(request: Request, remoteAddr: string): Response | Promise<Response>;
  /** A domain's access rules at the edge (issue 14); undefined: everything is served. */
  policy?(domain: string): CompiledPolicy | undefined;
  /** Other servers of the cluster: where to forward a domain this server holds no session for. */
  peers?: PeerForwarding;
  /** A request a policy refused (metrics). */
  onPolicyDenied?(domain: string, reason: string): void;
  isRegistered(domain: string): boolean;
  /** A peer whose X-Forwarded-For is kept and appended to (HOP_SERVER_TRUSTED_PROXIES). */
  isTrustedProxy?(address: string): boolean;
  registry: SessionRegistry;
  proxyTimeoutMs: number;
  /**
   * Most requests and upgrades one client address may have in progress on one domain (default 512):
   * a visitor holding WebSockets cannot take the domain's whole tunnel.
   */
  maxRequestsPerPeer?: number;
  /** Answers for this domain carry Strict-Transport-Security (HTTPS only). */
  hsts?(domain: string): boolean;
  logger: Logger;
  /** Called for every finished request (metrics). */
  onRequestDone?(
    info: { domain: string; status: number; durationMs: number; bytesIn: number; bytesOut: number },
  ): void;
}

export interface Gateway {
  handle: FrontHandler;
  /** Requests (and upgrades) in progress. */
  inFlight(): number;
  /** Resolves when no request is in progress, or after `ms`. */
  drained(ms: number): Promise<void>;
}

const BODYLESS = new Set(["GET", "HEAD", "OPTIONS", "DELETE", "TRACE"]);
const HSTS: [string, string] = ["Strict-Transport-Security", "max-age=31536000"];

/** Host without port, lower-cased, without a trailing dot; "" when absent or malformed. */
export function hostOf(authority: string): string {
  const m = /^(\[[^\]]+\]|[^:\s]+)(?::\d*)?$/.exec(authority.trim());
  return m ? m[1].toLowerCase().replace(/\.$/, "") : "";
}

function isAddressOrLocal(host: string): boolean {
  return host === "localhost" || host.startsWith("[") || /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
}

/** Adds Strict-Transport-Security unless the origin set its own. */
function addHsts(headers: HeaderLine[]): HeaderLine[] {
  if (headerValue(headers, "strict-transport-security") === undefined) headers.push(HSTS);
  return headers;
}

/** Builds the handler the fronts call. */
export function createGateway(options: GatewayOptions): Gateway {
  const log = options.logger.child({ component: "proxy" });
  const requests = new InFlight();

  const maxPerPeer = options.maxRequestsPerPeer ?? 512;
  /** "domain remote" → requests in progress. */
  const perPeer = new Map<string, number>();
  let lastShedLog = 0;

  /** Counts a request against its peer's share of a domain; false (and a 429) past the cap. */
  function admit(
    req: FrontRequest,
    res: FrontResponse,
    domain: string,
    requestId: string,
  ): string | undefined {
    const key = `${domain} ${req.remoteAddr}`;
    const n = perPeer.get(key) ?? 0;
    if (n >= maxPerPeer) {
      const now = performance.now();
      if (now - lastShedLog > 1000) {
        lastShedLog = now;
        log.warn(
          { domain, remote: req.remoteAddr, limit: maxPerPeer },
          "client address over its concurrent request cap; shedding",
        );
      }
      writeErrorPage(
        req,
        res,
        429,
        "too_many_requests",
        `Too many requests in progress from ${req.remoteAddr}.`,
        requestId,
        [
          ["retry-after", "1"],
        ],
      );
      return undefined;
    }
    perPeer.set(key, n + 1);
    return key;
  }

  function release(key: string): void {
    const n = (perPeer.get(key) ?? 1) - 1;
    if (n <= 0) perPeer.delete(key);
    else perPeer.set(key, n);
  }

  function own(host: string): boolean {
    return host === options.serverDomain || (options.ownAddressHosts && isAddressOrLocal(host));
  }

  async function throughTunnel(
    req: FrontRequest,
    res: FrontResponse,
    domain: string,
    requestId: string,
  ): Promise<ForwardOutcome> {
    const path = pathOf(req.target);
    const tried = new Set<string>();
    // A request another server of the cluster forwarded: its rules were applied there, and it is not
    // forwarded again. The marker never enters a tunnel.
    const marker = headerValue(req.headers, PEER_HEADER);
    const fromPeer = marker !== undefined &&
      (options.peers?.auth.verify(marker, domain, req.method, req.target) ?? false);
    let requestHeaders: HeaderLine[] | undefined = marker === undefined
      ? undefined
      : req.headers.filter(([n]) => n.toLowerCase() !== PEER_HEADER);
    const policy = fromPeer ? undefined : options.policy?.(domain);
    if (policy) {
      const facts = {
        remoteAddr: clientAddress(req.remoteAddr, req.headers, options.isTrustedProxy),
        headers: req.headers,
      };
      const decision = await checkRequest(policy, facts, Date.now());
      if (!decision.allow) {
        const { code, message } = denialText(decision);
        log.info(
          { request_id: requestId, domain, remote: facts.remoteAddr, rule: decision.rule },
          "request denied by policy",
        );
        options.onPolicyDenied?.(domain, decision.reason);
        writeErrorPage(req, res, decision.status, code, message, requestId, decision.headers);
        return { status: decision.status, bytesIn: 0, bytesOut: 0, aborted: false };
      }
      requestHeaders = applyHeaderEdits(requestHeaders ?? req.headers, decision.requestHeaders);
    }
    const hsts = req.proto === "https" && (options.hsts?.(domain) ?? false);
    const opts = {
      requestId,
      host: req.authority,
      trustedPeer: fromPeer || (options.isTrustedProxy?.(req.remoteAddr) ?? false),
      timeoutMs: options.proxyTimeoutMs,
      requestHeaders,
      editResponse: policy || hsts
        ? (lines: HeaderLine[]) => {
          const edited = policy ? applyResponseHeaders(policy, lines) : lines;
          return hsts ? addHsts(edited) : edited;
        }
        : undefined,
    };
    let aborted = false;
    req.onAbort(() => aborted = true);
    for (let attempt = 0;; attempt++) {
      const route = options.registry.route(domain, path);
      const fail = (status: number, code: string, message: string) => {
        writeErrorPage(req, res, status, code, message, requestId);
        return { status, bytesIn: 0, bytesOut: 0, aborted: false };
      };
      if (route.kind === "offline") {
        const peer = !fromPeer && attempt === 0 ? await options.peers?.findPeer(domain) : undefined;
        if (peer) {
          const forwarded = await forwardToPeer(req, res, peer, domain, options.peers!.auth);
          if (forwarded.status !== 0) {
            return { status: forwarded.status, bytesIn: 0, bytesOut: forwarded.bytesOut, aborted: false };
          }
          log.warn(
            { request_id: requestId, domain, peer: peer.host },
            "the server holding the session did not answer",
          );
        }
        return fail(502, "tunnel_offline", `No HopGate client is connected for ${domain} right now.`);
      }
      if (route.kind === "no_service") return fail(404, "no_service", `${domain} serves nothing at ${path}.`);
      const session: TunnelSession = route.session;
      if (tried.has(session.id)) {
        return fail(502, "tunnel_dropped", "The tunnel client went away before answering.");
      }
      tried.add(session.id);
      session.requestsServed++;
      try {
        return await forwardRequest(req, res, session.connection, opts);
      } catch (e) {
        // A bodiless request that never reached an answer is safe to send to another live session.
        const retry = e instanceof TunnelDroppedError && BODYLESS.has(req.method) && req.body === null &&
          attempt < 3 && !aborted && !res.headSent;
        if (retry) {
          log.warn(
            { request_id: requestId, domain, session: session.id },
            "session dropped a request; retrying",
          );
          continue;
        }
        const status = writeTunnelError(e, req, res, requestId);
        return { status, bytesIn: 0, bytesOut: 0, aborted: false };
      }
    }
  }

  async function route(req: FrontRequest, res: FrontResponse, host: string, requestId: string) {
    if (!host) {
      writeErrorPage(req, res, 400, "bad_request", "The request has no valid Host header.", requestId);
      return { status: 400, bytesIn: 0, bytesOut: 0, aborted: false };
    }
    if (own(host)) {
      let status = 0;
      await serveWeb(req, res, async (request) => {
        const response = await options.ownApp(request, req.remoteAddr);
        status = response.status;
        return response;
      });
      return { status, bytesIn: 0, bytesOut: 0, aborted: false };
    }
    if (!options.isRegistered(host)) {
      writeErrorPage(
        req,
        res,
        404,
        "unknown_host",
        `${host} is not served by this HopGate server.`,
        requestId,
      );
      return { status: 404, bytesIn: 0, bytesOut: 0, aborted: false };
    }
    const key = admit(req, res, host, requestId);
    if (key === undefined) return { status: 429, bytesIn: 0, bytesOut: 0, aborted: false };
    try {
      return await throughTunnel(req, res, host, requestId);
    } finally {
      release(key);
    }
  }

  function handle(req: FrontRequest, res: FrontResponse): void {
    const started = performance.now();
    const requestId = crypto.randomUUID();
    const host = hostOf(req.authority);
    requests.track(
      route(req, res, host, requestId).catch((e) => {
        log.error({ request_id: requestId, domain: host, err: (e as Error).message }, "request failed");
        writeErrorPage(req, res, 500, "internal", "The server failed to handle the request.", requestId);
        return { status: 500, bytesIn: 0, bytesOut: 0, aborted: false };
      }).then((outcome) => {
        const durationMs = Math.round((performance.now() - started) * 10) / 10;
        log.info({
          request_id: requestId,
          domain: host,
          method: req.method,
          path: pathOf(req.target),
          remote: req.remoteAddr,
          status: outcome.status,
          duration_ms: durationMs,
          bytes: outcome.bytesOut,
          aborted: outcome.aborted,
          ...(req.upgrade ? { upgrade: true } : {}),
        }, "request");
        options.onRequestDone?.({
          domain: host,
          status: outcome.status,
          durationMs,
          bytesIn: outcome.bytesIn,
          bytesOut: outcome.bytesOut,
        });
      }),
    );
  }

  return {
    handle,
    inFlight: () => requests.size,
    drained: (ms) => requests.drained(ms),
  };
}
