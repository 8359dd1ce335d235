/**
 * Server side of one HTTP request: open a stream on the session's connection, send
 * REQUEST_HEAD and the body, and turn the client's RESPONSE_HEAD + body into a Response.
 * Nothing is buffered whole: the request body is pumped with backpressure and the response
 * body is the stream's remaining bytes, pulled as the front reads them.
 */
import { type Clock, systemClock } from "../log/clock.ts";
import { encode, MessageReader, ProtocolError, type RequestHead, ResetCode } from "../protocol/mod.ts";
import type { TransportConnection, TransportStream } from "../transport/types.ts";
import { startDeadline } from "./deadline.ts";
import { TunnelDroppedError, TunnelError, TunnelLocalError, TunnelProtocolError } from "./errors.ts";
import { dropHopByHop, requestHeaderLines, toHeaders } from "./headers.ts";

export interface ForwardOptions {
  requestId: string;
  /** The browser's address, appended to X-Forwarded-For. */
  remoteAddr: string;
  proto: "http" | "https";
  /** The public host the browser asked for. */
  host: string;
  /**
   * No response head within this → TunnelTimeoutError (504). The countdown restarts whenever an
   * upload chunk is accepted, so a long upload that keeps moving is not cut short.
   */
  timeoutMs: number;
  /** Aborted when the browser goes away: the stream is reset, which aborts the client's local fetch. */
  signal?: AbortSignal;
  clock?: Clock;
}

const NO_BODY_STATUS = new Set([204, 205, 304]);

/** Opens a stream on `connection`, or gives up (and later resets the late stream) at the deadline. */
async function openStream(
  connection: TransportConnection,
  race: <T>(p: Promise<T>) => Promise<T>,
): Promise<TransportStream> {
  const opening = connection.openStream();
  try {
    return await race(opening);
  } catch (e) {
    opening.then((s) => s.reset(ResetCode.CANCELLED), () => {});
    if (e instanceof TunnelError) throw e;
    throw new TunnelDroppedError(`could not open a tunnel stream: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Writes the head, then pumps the request body, calling `onProgress` per chunk accepted. A
 * failing browser upload resets the stream; a stream that stops accepting (the client answered
 * early or died) cancels the upload.
 *
 * Without a body, the sending half stays open until the response ends (the returned `finish`
 * closes it): a reset then always carries RESET_STREAM, which the client sees at once, rather
 * than depending on STOP_SENDING alone to tell it the browser went away.
 */
async function sendRequest(
  stream: TransportStream,
  head: RequestHead,
  body: ReadableStream<Uint8Array> | null,
  onProgress: () => void,
): Promise<() => void> {
  const writer = stream.writable.getWriter();
  try {
    await writer.write(encode(head));
  } catch (e) {
    writer.releaseLock();
    throw new TunnelDroppedError(`tunnel stream failed while sending the request: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (body === null) return () => void writer.close().catch(() => {});
  void (async () => {
    const reader = body.getReader();
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch {
        stream.reset(ResetCode.CANCELLED);
        return;
      }
      try {
        if (chunk.done) {
          await writer.close();
          return;
        }
        await writer.write(chunk.value);
        onProgress();
      } catch (e) {
        reader.cancel(e).catch(() => {});
        return;
      }
    }
  })();
  return () => {};
}

/**
 * The host (with its port) the browser asked for. An HTTP/2 request has no Host header, only
 * :authority, which the front puts in the request URL; a caller that fell back to the bare domain
 * for want of a Host header would otherwise drop a non-default port from Host/X-Forwarded-Host.
 */
function publicHost(request: Request, url: URL, given: string): string {
  if (request.headers.has("host")) return given;
  return url.hostname.toLowerCase() === given.toLowerCase() && url.port !== "" ? url.host : given;
}

/** Forwards `request` through a new stream on `connection`; resolves with the response once its head arrived. */
export async function forwardHttp(
  request: Request,
  connection: TransportConnection,
  opts: ForwardOptions,
): Promise<Response> {
  const url = new URL(request.url);
  const fields = { ...opts, host: publicHost(request, url, opts.host) };
  let head: RequestHead;
  try {
    head = {
      type: "REQUEST_HEAD",
      requestId: opts.requestId,
      method: request.method,
      path: url.pathname + url.search,
      headers: requestHeaderLines(request.headers, fields),
      remoteAddr: opts.remoteAddr,
      proto: opts.proto,
      host: fields.host,
      hasBody: request.body !== null,
    };
    encode(head);
  } catch (e) {
    if (e instanceof ProtocolError) {
      throw new TunnelError(400, "bad_request", `request cannot be forwarded: ${e.message}`);
    }
    throw e;
  }

  const deadline = startDeadline(opts.clock ?? systemClock, opts.timeoutMs, opts.signal);
  let stream: TransportStream | undefined;
  try {
    stream = await openStream(connection, deadline.race);
    const finishRequest = await deadline.race(sendRequest(stream, head, request.body, deadline.touch));
    const reader = new MessageReader(stream.readable);
    const answer = await deadline.race(reader.expect("RESPONSE_HEAD", "ERROR"));
    deadline.clear();
    if (answer.type === "ERROR") {
      stream.reset(ResetCode.CANCELLED);
      throw new TunnelLocalError(answer.code, answer.message);
    }
    return buildResponse(request, answer, reader, stream, opts.signal, finishRequest);
  } catch (e) {
    deadline.clear();
    throw classifyFailure(e, stream, "response");
  }
}

/**
 * Turns a failure before the client's answer into a TunnelError, resetting the stream as it goes.
 * `phase` names what never came; the upgrade relay also resets after a local error, because its
 * sending half stays open as a raw pipe.
 */
export function classifyFailure(
  e: unknown,
  stream: TransportStream | undefined,
  phase: "response" | "upgrade answer",
): TunnelError {
  if (e instanceof TunnelLocalError) {
    if (phase === "upgrade answer") stream?.reset(ResetCode.CANCELLED);
    return e;
  }
  if (e instanceof TunnelError) {
    stream?.reset(e.status === 504 ? ResetCode.TIMEOUT : ResetCode.CANCELLED);
    return e;
  }
  if (e instanceof ProtocolError) {
    stream?.reset(ResetCode.PROTOCOL_ERROR);
    return new TunnelProtocolError(`tunnel client broke the protocol: ${e.message}`, { cause: e });
  }
  stream?.reset(ResetCode.CANCELLED);
  const message = e instanceof Error ? e.message : String(e);
  return new TunnelDroppedError(`tunnel stream closed before the ${phase}: ${message}`, { cause: e });
}

function buildResponse(
  request: Request,
  head: { status: number; statusText: string; headers: [string, string][] },
  reader: MessageReader,
  stream: TransportStream,
  signal: AbortSignal | undefined,
  finishRequest: () => void,
): Response {
  const headers = toHeaders(dropHopByHop(head.headers));
  const bodiless = request.method === "HEAD" || NO_BODY_STATUS.has(head.status);
  let body: ReadableStream<Uint8Array> | null = null;
  if (bodiless) {
    // Nothing should follow; drain to FIN so the stream finishes cleanly.
    reader.rest().pipeTo(new WritableStream()).then(finishRequest, () => {});
  } else {
    body = reader.rest({ onEnd: finishRequest, onCancel: () => stream.reset(ResetCode.CANCELLED) });
  }
  if (signal) {
    const onAbort = () => stream.reset(ResetCode.CANCELLED);
    signal.addEventListener("abort", onAbort, { once: true });
    const cleanup = () => signal.removeEventListener("abort", onAbort);
    stream.done.then(cleanup, cleanup);
  }
  return new Response(body, { status: head.status, statusText: head.statusText, headers });
}
