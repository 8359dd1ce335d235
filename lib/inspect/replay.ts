/**
 * Replay: re-sends a captured request (optionally edited) to the local service with node:http, so
 * header names, order, case and repeats go out as captured (raw header arrays, byte strings), and
 * records the answer as a new exchange beside the old one.
 */
import http from "node:http";
import https from "node:https";
import type { HeaderLine } from "../protocol/body.ts";
import { bodyBytes, type CaptureStore, type Exchange } from "./capture.ts";

export interface ReplayEdits {
  method?: string;
  /** A new request target (path and query), as a byte string. */
  target?: string;
  headers?: HeaderLine[];
  /** A new body; absent: the captured one. */
  body?: Uint8Array;
}

export class ReplayError extends Error {
  readonly code = "REPLAY_FAILED";
}

/** Replay gives up on a local service that does not answer within this time. */
const REPLAY_TIMEOUT_MS = 30_000;

/** Headers that describe the body's framing: recomputed for the body actually sent. */
const FRAMING = new Set(["content-length", "transfer-encoding"]);

/** Sends the request; resolves with the id of the new exchange once its response has ended. */
export function replayExchange(
  store: CaptureStore,
  original: Exchange,
  edits: ReplayEdits = {},
): Promise<number> {
  const method = edits.method ?? original.method;
  const target = edits.target ?? original.target;
  const body = edits.body ?? bodyBytes(original.requestBody);
  const headers = (edits.headers ?? original.requestHeaders).filter(([k]) => !FRAMING.has(k.toLowerCase()));
  if (body.byteLength > 0 || !["GET", "HEAD", "DELETE", "OPTIONS"].includes(method.toUpperCase())) {
    headers.push(["Content-Length", String(body.byteLength)]);
  }
  const local = new URL(original.localUrl);
  if (local.protocol !== "http:" && local.protocol !== "https:") {
    // h2c services (gRPC) need HTTP/2 and trailers: an HTTP/1.1 replay would only mislead.
    return Promise.reject(
      new ReplayError(`replay goes to http and https services only; this one is ${local.protocol}//`),
    );
  }
  const { id, capture } = store.beginReplay({
    requestId: `replay-${original.id}-${crypto.randomUUID().slice(0, 8)}`,
    method,
    target,
    headers,
    localUrl: original.localUrl,
  }, original.id);
  capture.requestBody(body);
  const secure = local.protocol === "https:";
  return new Promise((resolve, reject) => {
    const fail = (message: string) => {
      capture.end({ error: message });
      reject(new ReplayError(message));
    };
    const req = (secure ? https : http).request({
      host: local.hostname.replace(/^\[|\]$/g, ""),
      port: Number(local.port || (secure ? 443 : 80)),
      method,
      path: target,
      headers: headers.flat(),
      // The local service is the developer's own; a self-signed certificate there is the norm.
      rejectUnauthorized: false,
      timeout: REPLAY_TIMEOUT_MS,
    }, (res) => {
      const raw = res.rawHeaders;
      const lines: HeaderLine[] = [];
      for (let i = 0; i + 1 < raw.length; i += 2) lines.push([raw[i], raw[i + 1]]);
      capture.response(res.statusCode ?? 0, res.statusMessage ?? "", lines);
      res.on("data", (chunk: Uint8Array) => capture.responseBody(chunk));
      res.on("end", () => {
        capture.end({});
        resolve(id);
      });
      res.on("error", (e: Error) => fail(`response broke: ${e.message}`));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${REPLAY_TIMEOUT_MS} ms`)));
    req.on("error", (e: Error) => fail(`${local.host}: ${e.message}`));
    req.end(body);
  });
}
