/** Client side: which local service serves a path, and the URL it is reached at. */
import type { HeaderLine } from "../protocol/mod.ts";
import type { Clock } from "../log/clock.ts";
import { longestPrefix } from "./prefix.ts";

/** A local service the client forwards a path prefix to. */
export interface LocalService {
  /** Path prefix, e.g. "/" or "/api". */
  prefix: string;
  /** Base URL of the local service, e.g. http://127.0.0.1:3000 (a path, if any, is prepended). */
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

/** The local URL for a request path: target origin + target path (without its trailing /) + path. The prefix is not stripped. */
export function localUrl(service: LocalService, path: string): URL {
  const base = service.target.pathname.replace(/\/+$/, "");
  return new URL(service.target.origin + base + path);
}

/** The Host value the local service receives. */
export function localHost(mode: HostMode, publicHost: string, target: URL): string {
  return mode === "preserve" ? publicHost : target.host;
}

/** Header lines without the given (lower-case) names. */
export function withoutHeaders(lines: HeaderLine[], names: ReadonlySet<string>): HeaderLine[] {
  return lines.filter(([n]) => !names.has(n.toLowerCase()));
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
