/**
 * How the inspector shows a captured body: decoded from gzip/br/deflate for display only (the bytes
 * forwarded are never touched), then as pretty JSON, text, an image or a hex dump.
 */
import { brotliDecompressSync, constants, gunzipSync, inflateRawSync, inflateSync } from "node:zlib";
import type { HeaderLine } from "../protocol/body.ts";
import { bodyBytes, type CapturedBody } from "./capture.ts";

export interface BodyView {
  kind: "empty" | "json" | "text" | "image" | "binary";
  /** json and text. */
  text?: string;
  /** image: a data: URL. */
  dataUrl?: string;
  /** binary: a hex dump of the first bytes. */
  hex?: string;
  /** The content-encoding undone for display, if any. */
  decoded?: string;
  decodeError?: string;
  /** Bytes on the wire, bytes kept, and whether the view shows a cut body. */
  total: number;
  kept: number;
  truncated: boolean;
}

/** Hex dumps stop after this many bytes: enough to recognise a format, small enough for a page. */
const HEX_LIMIT = 4096;

/** The first value of a header, by case-insensitive name. */
export function headerValue(headers: HeaderLine[], name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find(([k]) => k.toLowerCase() === lower)?.[1];
}

/** Undoes a content-encoding; a cut body (the 64 KB limit) decodes as far as it goes. */
export function decodeContent(bytes: Uint8Array, encoding: string): Uint8Array {
  // SYNC_FLUSH instead of FINISH: a truncated stream yields what it has instead of an error.
  const opts = { finishFlush: constants.Z_SYNC_FLUSH };
  switch (encoding) {
    case "gzip":
    case "x-gzip":
      return new Uint8Array(gunzipSync(bytes, opts));
    case "br":
      return new Uint8Array(
        brotliDecompressSync(bytes, { finishFlush: constants.BROTLI_OPERATION_FLUSH }),
      );
    case "deflate":
      // "deflate" is zlib-wrapped by the RFC, raw in some servers: try both.
      try {
        return new Uint8Array(inflateSync(bytes, opts));
      } catch {
        return new Uint8Array(inflateRawSync(bytes, opts));
      }
    default:
      throw new Error(`unknown content-encoding ${encoding}`);
  }
}

function hexDump(bytes: Uint8Array): string {
  const lines: string[] = [];
  for (let i = 0; i < Math.min(bytes.byteLength, HEX_LIMIT); i += 16) {
    const row = bytes.subarray(i, Math.min(i + 16, bytes.byteLength));
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, "0")).join(" ");
    const ascii = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${i.toString(16).padStart(8, "0")}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join("\n");
}

function looksLikeText(bytes: Uint8Array): boolean {
  const head = bytes.subarray(0, 8192);
  // Control bytes other than tab, newline, form feed and CR mean binary.
  for (const b of head) if (b < 0x20 && b !== 9 && b !== 10 && b !== 12 && b !== 13) return false;
  try {
    // stream: a cut body may end inside a UTF-8 sequence; that tail is held back, not an error.
    new TextDecoder("utf-8", { fatal: true }).decode(head, { stream: true });
    return true;
  } catch {
    return false;
  }
}

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.byteLength; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** The view of a body with the headers that describe it. */
export function viewBody(body: CapturedBody, headers: HeaderLine[]): BodyView {
  const base = { total: body.total, kept: body.kept, truncated: body.kept < body.total };
  if (body.total === 0) return { kind: "empty", ...base };
  let bytes = bodyBytes(body);
  const view: Partial<BodyView> = {};
  const encoding = headerValue(headers, "content-encoding")?.trim().toLowerCase();
  if (encoding && encoding !== "identity") {
    try {
      bytes = decodeContent(bytes, encoding);
      view.decoded = encoding;
    } catch (e) {
      view.decodeError = `could not undo content-encoding ${encoding}: ${(e as Error).message}`;
      return { kind: "binary", hex: hexDump(bytes), ...view, ...base };
    }
  }
  const type = (headerValue(headers, "content-type") ?? "").toLowerCase();
  if (type.startsWith("image/")) {
    const mime = type.split(";")[0].trim();
    return { kind: "image", dataUrl: `data:${mime};base64,${base64(bytes)}`, ...view, ...base };
  }
  const textual = /^text\/|json|xml|javascript|x-www-form-urlencoded|graphql/.test(type);
  if (textual || (!type.startsWith("application/octet-stream") && looksLikeText(bytes))) {
    const text = new TextDecoder().decode(bytes);
    if (/json/.test(type) || /^\s*[\[{]/.test(text)) {
      try {
        return { kind: "json", text: JSON.stringify(JSON.parse(text), null, 2), ...view, ...base };
      } catch { /* not JSON after all (or cut): shown as text */ }
    }
    if (textual || looksLikeText(bytes)) return { kind: "text", text, ...view, ...base };
  }
  return { kind: "binary", hex: hexDump(bytes), ...view, ...base };
}
