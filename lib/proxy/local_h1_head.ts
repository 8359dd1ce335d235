/**
 * The header array an HTTP/1.1 request is written with, for both paths (local_h1_lean.ts and
 * node:http in local_h1.ts). Its own module so the lean path never loads node:http (issue 13).
 */
import type { LocalRequest } from "./local_http_types.ts";

const FRAMING = new Set(["content-length", "transfer-encoding"]);
/** Methods node sends without framing when they carry no body. */
const BODILESS_BY_DEFAULT = new Set(["GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"]);

/**
 * The header array written on the wire: the caller's lines minus framing, then the framing this
 * request uses (Content-Length at the browser's position when it sent one, else chunked when there
 * is a body), and `Connection: upgrade` for an upgrade request without a Connection line.
 */
export function h1HeaderArray(req: LocalRequest): string[] {
  const out: string[] = [];
  let lengthName: string | undefined;
  let hasConnection = false;
  for (const [name, value] of req.headers) {
    const lower = name.toLowerCase();
    if (FRAMING.has(lower)) {
      if (lower === "content-length" && req.contentLength !== undefined && lengthName === undefined) {
        lengthName = name;
        out.push(name, String(req.contentLength));
      }
      continue;
    }
    if (lower === "connection") hasConnection = true;
    out.push(name, value);
  }
  if (req.contentLength !== undefined) {
    if (lengthName === undefined) out.push("Content-Length", String(req.contentLength));
  } else if (req.body) {
    // Explicit, so node chunks the body whatever the method (it sends GET bodies unframed otherwise).
    out.push("Transfer-Encoding", "chunked");
  } else if (!BODILESS_BY_DEFAULT.has(req.method.toUpperCase())) {
    // node renders a raw header array at once and would frame a bodiless POST as an empty chunked
    // body; RFC 9110 §8.6 has user agents send Content-Length: 0 there, as browsers do.
    out.push("Content-Length", "0");
  }
  if (req.upgrade && !hasConnection) out.push("Connection", "Upgrade");
  return out;
}
