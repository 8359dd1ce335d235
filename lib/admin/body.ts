/** Reading a JSON body with a size cap: 413 past the cap, 400 for malformed JSON, nothing buffered beyond the cap. */
import { ApiError } from "./errors.ts";

export const MAX_BODY_BYTES = 64 * 1024;

/** Reads and parses the request's JSON body, at most `limit` bytes. */
export async function readJsonBody(request: Request, limit = MAX_BODY_BYTES): Promise<unknown> {
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const type = request.headers.get("content-type") ?? "";
  if (type && !/^application\/(?:[\w.+-]*\+)?json\b/i.test(type)) {
    throw new ApiError(
      415,
      "unsupported_media_type",
      `send JSON with Content-Type: application/json (got ${type})`,
    );
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (request.body) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        throw tooLarge(limit);
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ApiError(400, "invalid_json", "the body is not valid UTF-8");
  }
  if (text.trim() === "") throw new ApiError(400, "invalid_json", "the body is empty; send a JSON object");
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, "invalid_json", `the body is not valid JSON: ${(e as Error).message}`);
  }
}

function tooLarge(limit: number): ApiError {
  return new ApiError(413, "body_too_large", `the body exceeds ${limit} bytes`);
}
