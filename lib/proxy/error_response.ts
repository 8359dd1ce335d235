/** Turns forwarding failures into branded error responses. */
import { errorResponse } from "../pages/mod.ts";
import { TunnelError } from "./errors.ts";

/** The error page (HTML or JSON by Accept) for a forwarding failure; unknown errors become a 502. */
export function tunnelErrorResponse(error: unknown, request: Request, requestId: string): Response {
  if (error instanceof TunnelError) {
    return errorResponse(error.status, error.code, error.message, request, requestId);
  }
  return errorResponse(502, "bad_gateway", "the tunnel failed unexpectedly", request, requestId);
}
