/**
 * Client side of a tunnel stream: read the head, replay the request against the local service
 * with fetch (streaming both ways), write RESPONSE_HEAD and the body back. UPGRADE streams are
 * handed to the raw TCP relay in client_upgrade.ts.
 *
 * Host: Deno's fetch silently replaces a `host` header with the URL's host unless the
 * HttpClient was created with `allowHost: true`, so "preserve" mode uses such a client.
 *
 * Content-Encoding: Deno's fetch transparently decodes gzip and br bodies whenever the
 * request's Accept-Encoding is anything but "identity", and (since Deno 2.x) keeps the
 * Content-Encoding/Content-Length headers. A proxy must forward bytes matching its headers, so
 * gzip/br are removed from the Accept-Encoding sent to the local service (deflate and zstd pass
 * through untouched), and if the service answers gzip/br anyway the decoded body is sent with
 * those two headers dropped.
 */
import type { Logger } from "../log/logger.ts";
import { type Clock, systemClock } from "../log/clock.ts";
import {
  encode,
  type HeaderLine,
  MessageReader,
  ProtocolError,
  type RequestHead,
  ResetCode,
  type ResponseHead,
  sendErrorAndFinish,
} from "../protocol/mod.ts";
import type { TransportStream } from "../transport/types.ts";
import { dropHopByHop, headerLines } from "./headers.ts";
import {
  type HostMode,
  localHost,
  type LocalService,
  localUrl,
  pickService,
  type ServedRequest,
  servedRequestReporter,
  withoutHeaders,
} from "./local_target.ts";
import { relayUpgrade } from "./client_upgrade.ts";

export interface HandleStreamOptions {
  services: readonly LocalService[];
  hostMode: HostMode;
  logger: Logger;
  onRequest?(info: ServedRequest): void;
  /** The fetch client; "preserve" mode needs one created with `allowHost: true` (a shared one is made if absent). */
  httpClient?: Deno.HttpClient;
  clock?: Clock;
}

let sharedHostClient: Deno.HttpClient | undefined;

/** A process-wide HttpClient that lets requests carry their own Host header. */
function hostPreservingClient(): Deno.HttpClient {
  sharedHostClient ??= Deno.createHttpClient({ allowHost: true });
  return sharedHostClient;
}

const DECODED_BY_FETCH = new Set(["gzip", "x-gzip", "br"]);
// content-length: fetch ignores it for a streamed body; expect: the front already answered 100-continue.
const DROPPED_REQUEST_HEADERS = new Set(["host", "content-length", "accept-encoding", "expect"]);

/** Accept-Encoding for the local request: the browser's, minus what fetch would decode. */
export function localAcceptEncoding(browser: string | undefined): string {
  const kept = (browser ?? "").split(",").map((t) => t.trim()).filter((t) => {
    const coding = t.split(";")[0].trim().toLowerCase();
    return coding !== "" && !DECODED_BY_FETCH.has(coding) && coding !== "*";
  });
  return kept.length > 0 ? kept.join(", ") : "identity";
}

function headerValue(lines: HeaderLine[], name: string): string | undefined {
  return lines.find(([n]) => n.toLowerCase() === name)?.[1];
}

/** Serves one stream the server opened. Never throws; failures end up as ERROR, a reset, or a log line. */
export async function handleStream(stream: TransportStream, opts: HandleStreamOptions): Promise<void> {
  const reader = new MessageReader(stream.readable);
  let head;
  try {
    head = await reader.expect("REQUEST_HEAD", "UPGRADE_HEAD");
  } catch (e) {
    if (e instanceof ProtocolError) {
      opts.logger.warn({ err: e.message, code: e.code }, "tunnel stream with a bad head");
      stream.reset(ResetCode.PROTOCOL_ERROR);
    } else {
      opts.logger.debug({ err: String(e) }, "tunnel stream ended before its head");
    }
    return;
  }
  if (head.type === "UPGRADE_HEAD") {
    await relayUpgrade(stream, head, reader, opts);
    return;
  }
  await forwardLocal(stream, head, reader, opts);
}

/** True when a fetch failure means the local service could not be reached at all. */
function isUnreachable(e: unknown): boolean {
  const text = `${e instanceof Error ? e.message : e} ${
    e instanceof Error && e.cause ? String(e.cause) : ""
  }`;
  return /connect|refused|dns error|unreachable|no route|timed out|reset by peer/i.test(text);
}

function describe(e: unknown): string {
  if (e instanceof Error && e.cause instanceof Error) return e.cause.message;
  return e instanceof Error ? e.message : String(e);
}

/** Counts bytes flowing through a body stream. */
function counted(body: ReadableStream<Uint8Array>, add: (n: number) => void): ReadableStream<Uint8Array> {
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, c) {
        add(chunk.length);
        c.enqueue(chunk);
      },
    }),
  );
}

async function forwardLocal(
  stream: TransportStream,
  head: RequestHead,
  reader: MessageReader,
  opts: HandleStreamOptions,
): Promise<void> {
  const clock = opts.clock ?? systemClock;
  const { info, report } = servedRequestReporter(head, false, clock, opts.onRequest);
  const log = opts.logger.child({ request_id: head.requestId });

  const service = pickService(opts.services, head.path);
  if (!service) {
    await reader.cancel();
    await sendErrorAndFinish(
      stream.writable,
      "no_service",
      `no local service is configured for ${head.path}`,
    );
    report({ status: 404, error: "no_service" });
    return;
  }

  const target = localUrl(service, head.path);
  const headers = new Headers();
  for (const [n, v] of withoutHeaders(dropHopByHop(head.headers), DROPPED_REQUEST_HEADERS)) {
    headers.append(n, v);
  }
  headers.set("accept-encoding", localAcceptEncoding(headerValue(head.headers, "accept-encoding")));
  if (opts.hostMode === "preserve") headers.set("host", localHost("preserve", head.host, service.target));

  // The stream finishing while the response is still being written means it was reset.
  const controller = new AbortController();
  let finished = false;
  stream.done.then(() => {
    if (!finished) controller.abort(new Error("tunnel stream reset"));
  }, () => controller.abort());

  const rest = reader.rest();
  let body: ReadableStream<Uint8Array> | null = null;
  if (head.hasBody) body = counted(rest, (n) => info.bytesIn += n);
  else rest.pipeTo(new WritableStream()).catch(() => controller.abort());

  let response: Response;
  try {
    const init: RequestInit & { client?: Deno.HttpClient; duplex?: "half" } = {
      method: head.method,
      headers,
      body,
      redirect: "manual",
      signal: controller.signal,
      client: opts.hostMode === "preserve" ? (opts.httpClient ?? hostPreservingClient()) : opts.httpClient,
      // Required by fetch for a streaming request body.
      duplex: "half",
    };
    response = await fetch(target, init);
  } catch (e) {
    if (controller.signal.aborted) {
      log.debug({ path: head.path }, "request cancelled by the server before the local answer");
      report({ error: "reset" });
      return;
    }
    const code = isUnreachable(e) ? "local_unreachable" : "local_error";
    const message = `${target.origin}: ${describe(e)}`;
    log.warn({ path: head.path, code, err: message }, "local service failed");
    await sendErrorAndFinish(stream.writable, code, message);
    report({ status: 502, error: code });
    return;
  }
  await sendResponse(stream, response, controller, info, log);
  finished = true;
  report({});
}

function responseHead(response: Response): ResponseHead {
  let lines = dropHopByHop(headerLines(response.headers));
  const coding = response.headers.get("content-encoding")?.trim().toLowerCase();
  if (coding && DECODED_BY_FETCH.has(coding)) {
    lines = withoutHeaders(lines, new Set(["content-encoding", "content-length"]));
  }
  return { type: "RESPONSE_HEAD", status: response.status, statusText: response.statusText, headers: lines };
}

async function sendResponse(
  stream: TransportStream,
  response: Response,
  controller: AbortController,
  info: ServedRequest,
  log: Logger,
): Promise<void> {
  info.status = response.status;
  let frame: Uint8Array;
  try {
    frame = encode(responseHead(response));
  } catch (e) {
    await response.body?.cancel();
    await sendErrorAndFinish(
      stream.writable,
      "local_error",
      `local response cannot be forwarded: ${(e as Error).message}`,
    );
    info.error = "local_error";
    return;
  }
  const writer = stream.writable.getWriter();
  const bodyReader = response.body?.getReader();
  try {
    await writer.write(frame);
    while (bodyReader) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await bodyReader.read();
      } catch (e) {
        // The local service died mid-body: the server must see an error, not a short body.
        if (!controller.signal.aborted) {
          log.warn({ err: describe(e) }, "local response body failed");
          stream.reset(ResetCode.INTERNAL);
        }
        info.error = "reset";
        return;
      }
      if (chunk.done) break;
      await writer.write(chunk.value);
      info.bytesOut += chunk.value.length;
    }
    await writer.close();
  } catch {
    // Writing to the tunnel failed: the server reset the stream.
    controller.abort();
    bodyReader?.cancel().catch(() => {});
    info.error = "reset";
  }
}
