/** Client side: which local service serves a path, where it is reached, and the per-request record. */
import type { Clock } from "../log/clock.ts";
import { longestPrefix } from "./prefix.ts";

/** A local service the client forwards a path prefix to. */
export interface LocalService {
  /** Path prefix, e.g. "/" or "/api". */
  prefix: string;
  /** Base URL of the local service: http(s)://host:port, or h2c://host:port for HTTP/2 without TLS (a path, if any, is prepended). */
  target: URL;
}

/**
 * How the local service sees Host: "preserve" sends the public host (what virtual-hosted apps
 * expect), "rewrite" sends the target's host:port (what dev servers with host checks expect).
 */
export type HostMode = "preserve" | "rewrite";

/** The service with the longest prefix covering `path`, or undefined. */
export function pickService(services: readonly LocalService[], path: string): LocalService | undefined {
  return longestPrefix(services, path, (s) => s.prefix);
}

/** Where a service is dialled: its origin (h2c becomes http) and whether it speaks h2c. */
export function serviceOrigin(service: LocalService): { origin: URL; h2c: boolean } {
  if (service.target.protocol === "h2c:") {
    return { origin: new URL(`http://${service.target.host}`), h2c: true };
  }
  return { origin: new URL(service.target.origin), h2c: false };
}

/** The local request-target: the target's base path (without its trailing /) + the raw target. The prefix is not stripped. */
export function localTarget(service: LocalService, target: string): string {
  const base = service.target.pathname.replace(/\/+$/, "");
  return base + target;
}

/** Per-request facts for the client's terminal line and logs. */
export interface ServedRequest {
  requestId: string;
  method: string;
  path: string;
  /** The local status; 502/404 when the client answered with an ERROR itself; 0 when the stream was reset first. */
  status: number;
  durationMs: number;
  /** Request body bytes read from the tunnel. */
  bytesIn: number;
  /** Response body bytes written to the tunnel. */
  bytesOut: number;
  upgrade: boolean;
  /** Set when the request failed: the ERROR code sent, or "reset". */
  error?: string;
}

/**
 * Starts the per-request record for a head: `info` is filled in as the request goes, and `report`
 * stamps the duration and hands it to `onRequest`.
 */
export function servedRequestReporter(
  head: { requestId: string; method: string; path: string },
  upgrade: boolean,
  clock: Clock,
  onRequest: ((info: ServedRequest) => void) | undefined,
): { info: ServedRequest; report: (patch?: Partial<ServedRequest>) => void } {
  const started = clock.now();
  const info: ServedRequest = {
    requestId: head.requestId,
    method: head.method,
    path: head.path,
    status: 0,
    durationMs: 0,
    bytesIn: 0,
    bytesOut: 0,
    upgrade,
  };
  const report = (patch: Partial<ServedRequest> = {}) => {
    Object.assign(info, patch, { durationMs: clock.now() - started });
    onRequest?.(info);
  };
  return { info, report };
}
