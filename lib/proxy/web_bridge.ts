/**
 * The server's own domain (admin API, health, error pages) on Web Request/Response: a FrontRequest
 * becomes a Request, the Response goes back through the FrontResponse. Never on the tunnelled path,
 * which stays byte-faithful.
 */
import type { ByteSource, HeaderLine } from "../protocol/body.ts";
import type { FrontRequest, FrontResponse } from "./front_types.ts";

/** The request-target with bytes ≥ 0x80 (raw UTF-8) and other unsafe bytes percent-encoded. */
export function encodeTarget(target: string): string {
  let out = "";
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    out += c >= 0x80 || c <= 0x20 || c === 0x7f
      ? "%" + c.toString(16).toUpperCase().padStart(2, "0")
      : target[i];
  }
  return out;
}

/** The URL a FrontRequest addresses (absolute-form targets are used as they are). */
export function requestUrl(request: FrontRequest): URL {
  const target = encodeTarget(request.target);
  if (/^https?:\/\//i.test(target)) return new URL(target);
  const path = target.startsWith("/") ? target : "/";
  return new URL(`${request.proto}://${request.authority || "localhost"}${path}`);
}

function readable(source: ByteSource): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      source.start({
        data(chunk) {
          controller.enqueue(chunk);
          if ((controller.desiredSize ?? 0) <= 0) source.pause();
        },
        end: () => controller.close(),
        error: (e) => controller.error(e),
      });
    },
    pull: () => source.resume(),
    cancel: (r) => source.cancel(r instanceof Error ? r : undefined),
  }, { highWaterMark: 4 });
}

/** Builds the Web Request for a FrontRequest. */
export function toWebRequest(request: FrontRequest, signal?: AbortSignal): Request {
  const headers = new Headers();
  for (const [n, v] of request.headers) {
    try {
      headers.append(n, v);
    } catch { /* a byte string Headers refuses: the admin API has no use for it */ }
  }
  const hasBody = request.body !== null && request.method !== "GET" && request.method !== "HEAD";
  if (!hasBody) request.body?.cancel();
  return new Request(requestUrl(request), {
    method: request.method,
    headers,
    body: hasBody ? readable(request.body!) : null,
    signal,
    // @ts-ignore: Deno and undici need duplex for a streamed body
    duplex: "half",
  });
}

/** The header lines of a Web Response (each Set-Cookie its own line). */
export function responseLines(headers: Headers): HeaderLine[] {
  const lines: HeaderLine[] = [];
  for (const [n, v] of headers) if (n !== "set-cookie") lines.push([n, v]);
  for (const c of headers.getSetCookie()) lines.push(["set-cookie", c]);
  return lines;
}

/** Answers a FrontRequest with a Web handler. */
export async function serveWeb(
  request: FrontRequest,
  response: FrontResponse,
  handler: (req: Request) => Response | Promise<Response>,
): Promise<void> {
  const abort = new AbortController();
  request.onAbort(() => abort.abort());
  let req: Request;
  let res: Response;
  try {
    req = toWebRequest(request, abort.signal);
  } catch {
    req = undefined as unknown as Request;
  }
  try {
    res = req ? await handler(req) : new Response("Bad Request\n", { status: 400 });
  } catch {
    res = new Response("Internal Server Error\n", { status: 500 });
  }
  response.head(res.status, res.statusText, responseLines(res.headers));
  if (!res.body) return response.body.end(null);
  const reader = res.body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!response.body.write(value)) await new Promise<void>((r) => response.body.onDrain(r));
    }
    response.body.end(null);
  } catch (e) {
    response.body.abort(e as Error);
  }
}
