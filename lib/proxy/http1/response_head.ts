/** HTTP/1.1 response heads: the status line and lines exactly as given, then the front's framing lines. */
import type { HeaderLine } from "../../protocol/body.ts";
import { validLine } from "./chunked.ts";

/**
 * Serializes a response head to its bytes (one byte per code unit), written straight into one buffer:
 * no intermediate string (the head is built for every response). Lines that could split the message
 * (CR, LF, NUL, a non-token name) are dropped: the origin's bytes must never frame a second response.
 */
export function responseHead(
  status: number,
  statusText: string,
  headers: HeaderLine[],
  framing: string[],
): Uint8Array {
  const reason = /[\r\n\0]/.test(statusText) ? statusText.replace(/[\r\n\0]/g, "") : statusText;
  const code = String(status);
  // "HTTP/1.1 " + code + " " + reason + CRLF, each line + CRLF, final CRLF
  let size = 9 + code.length + 1 + reason.length + 2 + 2;
  const keep: boolean[] = new Array(headers.length);
  for (let i = 0; i < headers.length; i++) {
    const [n, v] = headers[i];
    if ((keep[i] = validLine(n, v))) size += n.length + 2 + v.length + 2;
  }
  for (const f of framing) size += f.length + 2;
  const out = new Uint8Array(size);
  let at = put(out, 0, "HTTP/1.1 ");
  at = put(out, at, code);
  out[at++] = 32;
  at = put(out, at, reason);
  out[at++] = 13;
  out[at++] = 10;
  for (let i = 0; i < headers.length; i++) {
    if (!keep[i]) continue;
    at = put(out, at, headers[i][0]);
    out[at++] = 58;
    out[at++] = 32;
    at = put(out, at, headers[i][1]);
    out[at++] = 13;
    out[at++] = 10;
  }
  for (const f of framing) {
    at = put(out, at, f);
    out[at++] = 13;
    out[at++] = 10;
  }
  out[at++] = 13;
  out[at++] = 10;
  return out;
}

function put(out: Uint8Array, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) out[at++] = s.charCodeAt(i);
  return at;
}
