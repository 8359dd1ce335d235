/** Branded error pages written straight to a front response (HTML, or JSON when Accept prefers it). */
import { prefersJson, renderErrorHtml, renderErrorJson } from "../pages/mod.ts";
import type { FrontRequest, FrontResponse } from "./front_types.ts";
import { TunnelError } from "./errors.ts";
import { headerValue } from "./headers.ts";

const encoder = new TextEncoder();

/** Answers `req` with the error page for `status`/`code`; never cached, with X-Request-Id. */
export function writeErrorPage(
  req: FrontRequest,
  res: FrontResponse,
  status: number,
  code: string,
  message: string,
  requestId: string,
  extraHeaders: [string, string][] = [],
): void {
  if (res.headSent) {
    res.body.abort(new Error(message));
    return;
  }
  const json = prefersJson(headerValue(req.headers, "accept") ?? null);
  const body = encoder.encode(
    json ? renderErrorJson(code, message, requestId) : renderErrorHtml(status, code, message, requestId),
  );
  res.head(status, "", [
    ["content-type", json ? "application/json; charset=utf-8" : "text/html; charset=utf-8"],
    ["content-length", String(body.length)],
    ["cache-control", "no-store"],
    ["x-content-type-options", "nosniff"],
    ["x-request-id", requestId],
    ...extraHeaders,
  ]);
  res.body.write(body);
  res.body.end();
}

/** The error page for a forwarding failure; unknown errors become a 502. */
export function writeTunnelError(
  error: unknown,
  req: FrontRequest,
  res: FrontResponse,
  requestId: string,
): number {
  if (error instanceof TunnelError) {
    writeErrorPage(req, res, error.status, error.code, error.message, requestId);
    return error.status;
  }
  writeErrorPage(req, res, 502, "bad_gateway", "the tunnel failed unexpectedly", requestId);
  return 502;
}
