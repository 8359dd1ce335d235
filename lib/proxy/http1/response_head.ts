/** HTTP/1.1 response heads: the status line and lines exactly as given, then the front's framing lines. */
import type { HeaderLine } from "../../protocol/body.ts";
import { validLine } from "./chunked.ts";

/**
 * Serializes a response head as a byte string. Lines that could split the message (CR, LF, NUL,
 * a non-token name) are dropped: the origin's bytes must never frame a second response.
 */
export function responseHead(
  status: number,
  statusText: string,
  headers: HeaderLine[],
  framing: string[],
): string {
  let s = "HTTP/1.1 " + status + " " + statusText.replace(/[\r\n\0]/g, "") + "\r\n";
  for (let i = 0; i < headers.length; i++) {
    const [n, v] = headers[i];
    if (validLine(n, v)) s += n + ": " + v + "\r\n";
  }
  for (let i = 0; i < framing.length; i++) s += framing[i] + "\r\n";
  return s + "\r\n";
}

/** Writes a byte string's low bytes into out at offset; returns the offset after it. */
export function putLatin1(out: Uint8Array, offset: number, s: string): number {
  for (let i = 0; i < s.length; i++) out[offset + i] = s.charCodeAt(i);
  return offset + s.length;
}
