/**
 * The server's request handling behind the front: the server's own domain gets the admin app,
 * a registered domain goes through its tunnel, anything else gets a 404 page. Also the access log
 * line per request, request ids, and the retry of a bodiless request whose session died before
 * answering.
 */
import type { Logger } from "../log/logger.ts";
import { errorResponse } from "../pages/mod.ts";
import type { FrontHandlers, RawSocket, RequestInfo } from "./front.ts";
import type { SessionRegistry, TunnelSession } from "./registry.ts";
import { forwardHttp } from "./server_forward.ts";
import { forwardUpgrade, rawHttpResponse } from "./server_upgrade.ts";
import { TunnelDroppedError } from "./errors.ts";
import { tunnelErrorResponse } from "./error_response.ts";

export interface GatewayOptions {
  serverDomain: string;
  /** The server's own routes (admin API, health). */
  ownApp(request: Request): Response | Promise<Response>;
  isRegistered(domain: string): boolean;
  registry: SessionRegistry;
  proxyTimeoutMs: number;
  logger: Logger;
  /** Called for every finished request (metrics). */
  onRequestDone?(
    info: { domain: string; status: number; durationMs: number; bytesIn: number; bytesOut: number },
  ): void;
}

export interface Gateway extends FrontHandlers {
  /** Requests (and upgrades) in progress. */
  inFlight(): number;
  /** Resolves when no request is in progress, or after `ms`. */
  drained(ms: number): Promise<void>;
}

const BODYLESS = new Set(["GET", "HEAD", "OPTIONS", "DELETE", "TRACE"]);

/** Host without port, lower-cased, without a trailing dot; "" when absent or malformed. */
export function hostOf(request: Request): string {
  const host = request.headers.get("host") ?? new URL(request.url).host;
  const m = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(host.trim());
  return m ? m[1].toLowerCase().replace(/\.$/, "") : "";
}

function isAddressOrLocal(host: string): boolean {
  return host === "localhost" || host.startsWith("[") || /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
}

/** Builds the handlers the fronts call. */
export function createGateway(options: GatewayOptions): Gateway {
  const log = options.logger.child({ component: "proxy" });
  let active = 0;
  let idle: (() => void)[] = [];
  const begin = () => active++;
  const end = () => {
    if (--active === 0) {
      for (const f of idle) f();
      idle = [];
    }
  };

  function own(host: string): boolean {
    return host === options.serverDomain || isAddressOrLocal(host);
  }

  /** Counts bytes as the body streams out, then logs the request once. */
  function logged(
    response: Response,
    fields: Record<string, unknown>,
    started: number,
    domain: string,
    bytesIn: () => number,
  ): Response {
    const done = (bytes: number, aborted = false) => {
      const durationMs = Math.round((performance.now() - started) * 10) / 10;
      log.info({ ...fields, status: response.status, duration_ms: durationMs, bytes, aborted }, "request");
      options.onRequestDone?.({
        domain,
        status: response.status,
        durationMs,
        bytesIn: bytesIn(),
        bytesOut: bytes,
      });
      end();
    };
    if (!response.body) {
      done(0);
      return response;
    }
    let bytes = 0;
    let finished = false;
    const finish = (aborted: boolean) => {
      if (!finished) {
        finished = true;
        done(bytes, aborted);
      }
    };
    const reader = response.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            finish(false);
            controller.close();
          } else {
            bytes += value.byteLength;
            controller.enqueue(value);
          }
        } catch (e) {
          finish(true);
          controller.error(e);
        }
      },
      cancel(reason) {
        finish(true);
        return reader.cancel(reason);
      },
    }, { highWaterMark: 0 });
    return new Response(body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  }

  async function throughTunnel(
    request: Request,
    info: RequestInfo,
    domain: string,
    requestId: string,
  ): Promise<Response> {
    const path = new URL(request.url).pathname;
    const tried = new Set<string>();
    for (let attempt = 0;; attempt++) {
      const route = options.registry.route(domain, path);
      if (route.kind === "offline") {
        return errorResponse(
          502,
          "tunnel_offline",
          `No HopGate client is connected for ${domain} right now.`,
          request,
          requestId,
        );
      }
      if (route.kind === "no_service") {
        return errorResponse(404, "no_service", `${domain} serves nothing at ${path}.`, request, requestId);
      }
      const session: TunnelSession = route.session;
      if (tried.has(session.id)) {
        return errorResponse(
          502,
          "tunnel_dropped",
          "The tunnel client went away before answering.",
          request,
          requestId,
        );
      }
      tried.add(session.id);
      session.requestsServed++;
      try {
        return await forwardHttp(request, session.connection, {
          requestId,
          remoteAddr: info.remoteAddr,
          proto: info.proto,
          host: request.headers.get("host") ?? new URL(request.url).host,
          timeoutMs: options.proxyTimeoutMs,
          signal: request.signal,
        });
      } catch (e) {
        // A bodiless request that never reached an answer is safe to send to another live session.
        const retry = e instanceof TunnelDroppedError && BODYLESS.has(request.method) &&
          request.body === null &&
          attempt < 3 && !request.signal.aborted;
        if (retry) {
          log.warn(
            { request_id: requestId, domain, session: session.id },
            "session dropped a request; retrying",
          );
          continue;
        }
        return tunnelErrorResponse(e, request, requestId);
      }
    }
  }

  async function handle(request: Request, info: RequestInfo): Promise<Response> {
    const started = performance.now();
    const requestId = crypto.randomUUID();
    const host = hostOf(request);
    const url = new URL(request.url);
    const fields = {
      request_id: requestId,
      domain: host,
      method: request.method,
      path: url.pathname,
      remote: info.remoteAddr,
    };
    begin();
    let response: Response;
    let uploaded = 0;
    if (request.body) {
      const counted = request.body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            uploaded += chunk.byteLength;
            controller.enqueue(chunk);
          },
        }),
      );
      // Built from parts: the front's request object is not always a real Request (hono's node adapter).
      request = new Request(request.url, {
        method: request.method,
        headers: request.headers,
        signal: request.signal,
        body: counted,
        duplex: "half",
      } as RequestInit);
    }
    try {
      if (!host) {
        response = errorResponse(
          400,
          "bad_request",
          "The request has no valid Host header.",
          request,
          requestId,
        );
      } else if (own(host)) response = await options.ownApp(request);
      else if (!options.isRegistered(host)) {
        response = errorResponse(
          404,
          "unknown_host",
          `${host} is not served by this HopGate server.`,
          request,
          requestId,
        );
      } else response = await throughTunnel(request, info, host, requestId);
    } catch (e) {
      log.error({ ...fields, err: (e as Error).message }, "request failed");
      response = errorResponse(
        500,
        "internal",
        "The server failed to handle the request.",
        request,
        requestId,
      );
    }
    if (!response.headers.has("x-request-id")) {
      try {
        response.headers.set("x-request-id", requestId);
      } catch {
        response = new Response(response.body, response);
        response.headers.set("x-request-id", requestId);
      }
    }
    return logged(response, fields, started, host, () => uploaded);
  }

  async function refuse(socket: RawSocket, response: Response) {
    try {
      const w = socket.writable.getWriter();
      await w.write(await rawHttpResponse(response));
      await w.close();
    } catch {
      socket.destroy();
    }
  }

  function upgrade(request: Request, socket: RawSocket, info: RequestInfo) {
    const requestId = crypto.randomUUID();
    const host = hostOf(request);
    const url = new URL(request.url);
    const started = performance.now();
    const fields = {
      request_id: requestId,
      domain: host,
      method: request.method,
      path: url.pathname,
      upgrade: true,
    };
    begin();
    (async () => {
      const route = host && !own(host) && options.isRegistered(host)
        ? options.registry.route(host, url.pathname)
        : null;
      if (!route || route.kind !== "ok") {
        const status = route?.kind === "offline" ? 502 : 404;
        await refuse(
          socket,
          errorResponse(
            status,
            route?.kind === "offline" ? "tunnel_offline" : "unknown_host",
            `Nothing to upgrade to at ${host}${url.pathname}.`,
            request,
            requestId,
          ),
        );
        log.info({ ...fields, status }, "upgrade refused");
        return;
      }
      route.session.requestsServed++;
      const result = await forwardUpgrade(request, socket, route.session.connection, {
        requestId,
        remoteAddr: info.remoteAddr,
        proto: info.proto,
        host: request.headers.get("host") ?? new URL(request.url).host,
        timeoutMs: options.proxyTimeoutMs,
      });
      if (!result.ok) {
        await refuse(socket, tunnelErrorResponse(result.error, request, requestId));
        log.info({ ...fields, status: result.error.status, err: result.error.message }, "upgrade failed");
        return;
      }
      await result.done;
      log.info(
        { ...fields, status: 101, duration_ms: Math.round(performance.now() - started) },
        "upgrade closed",
      );
    })().catch((e) => {
      log.warn({ ...fields, err: (e as Error).message }, "upgrade relay failed");
      socket.destroy();
    }).finally(end);
  }

  return {
    fetch: handle,
    upgrade,
    inFlight: () => active,
    drained(ms) {
      if (active === 0) return Promise.resolve();
      return new Promise((resolve) => {
        const timer = setTimeout(resolve, ms);
        idle.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
