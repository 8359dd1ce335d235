/**
 * Server side of one request, HTTP and upgrade alike: open a stream on the session's connection,
 * send the head (with a bodiless request's FIN, so a small request is one packet) and the body, then
 * write the client's answer to the browser: an ordinary response with its body and trailers, or, for
 * an upgrade the origin accepted with 101, the switch and raw bytes both ways. Nothing is buffered
 * whole: every body is piped with backpressure.
 */
import { type Clock, systemClock } from "../log/clock.ts";
import { type ByteSource, type HeaderLine, pipeBody } from "../protocol/body.ts";
import { TunnelStreamReader, TunnelStreamWriter } from "../protocol/exchange.ts";
import { encode, type HeadFields, type Message, ProtocolError, ResetCode } from "../protocol/mod.ts";
import type { TransportConnection, TransportStream } from "../transport/types.ts";
import { startDeadline } from "./deadline.ts";
import { TunnelDroppedError, TunnelError, TunnelLocalError, TunnelProtocolError } from "./errors.ts";
import type { FrontRequest, FrontResponse } from "./front_types.ts";
import { dropHopByHop, headerValue, requestHeaderLines } from "./headers.ts";

export interface ForwardOptions {
  requestId: string;
  /** The public host (with its port) the browser asked for. */
  host: string;
  /** The browser's peer is a trusted proxy (its X-Forwarded-For is kept). */
  trustedPeer: boolean;
  /**
   * No response head within this → TunnelTimeoutError (504). The countdown restarts whenever an
   * upload chunk is accepted, so a long upload that keeps moving is not cut short.
   */
  timeoutMs: number;
  /** The browser's header lines after edge rules (default: as they came). */
  requestHeaders?: HeaderLine[];
  /** Edits the answer's header lines before they go to the browser (HSTS, access-rule header edits). */
  editResponse?(headers: HeaderLine[]): HeaderLine[];
  clock?: Clock;
}

/** How a forwarded request ended, for the access log and metrics. */
export interface ForwardOutcome {
  status: number;
  /** Request body bytes sent into the tunnel. */
  bytesIn: number;
  /** Response body bytes written to the browser. */
  bytesOut: number;
  /** The response broke after its head (browser gone, client reset). */
  aborted: boolean;
}

/**
 * Forwards `req` and writes the answer to `res`. Rejects with a TunnelError when no answer came
 * (nothing was written to `res`: the caller answers with an error page or retries); resolves once the
 * response (or the upgraded connection) ended.
 */
export async function forwardRequest(
  req: FrontRequest,
  res: FrontResponse,
  connection: TransportConnection,
  opts: ForwardOptions,
): Promise<ForwardOutcome> {
  const upgrade = req.upgrade && req.body === null;
  const head = requestHead(req, opts, upgrade);
  const deadline = startDeadline(opts.clock ?? systemClock, opts.timeoutMs);
  // Before the answer, the browser going away ends the wait; after it, it resets the stream.
  let onAbort = deadline.abort;
  req.onAbort(() => onAbort());
  const outcome: ForwardOutcome = { status: 0, bytesIn: 0, bytesOut: 0, aborted: false };
  let stream: TransportStream | undefined;
  let answer: Message;
  let reader: TunnelStreamReader;
  let writer: TunnelStreamWriter;
  try {
    stream = await openStream(connection, deadline.race);
    const s = stream;
    let headArrived!: (m: Message) => void;
    let headFailed!: (e: unknown) => void;
    const arriving = new Promise<Message>((resolve, reject) => {
      headArrived = resolve;
      headFailed = reject;
    });
    reader = new TunnelStreamReader(s, { head: headArrived, fail: headFailed });
    writer = new TunnelStreamWriter(s);
    writer.headBytes(head, req.body === null && !upgrade);
    if (req.body !== null) sendBody(req.body, writer, s, outcome, deadline.touch);
    answer = await deadline.race(arriving);
    deadline.clear();
  } catch (e) {
    deadline.clear();
    throw classifyFailure(e, stream);
  }
  onAbort = () => stream.reset(ResetCode.CANCELLED);
  if (answer.type === "ERROR") {
    stream.reset(ResetCode.CANCELLED);
    throw new TunnelLocalError(answer.code, answer.message);
  }
  if (answer.type !== "RESPONSE_HEAD" || (answer.status === 101 && !upgrade)) {
    throw classifyFailure(
      new ProtocolError(
        "unexpected_type",
        `${answer.type} ${"status" in answer ? answer.status : ""} as an answer`,
      ),
      stream,
    );
  }
  outcome.status = answer.status;
  let headers = dropHopByHop(answer.headers, answer.status === 101 ? UPGRADE_KEEP : undefined);
  if (headerValue(headers, "x-request-id") === undefined) headers.push(["X-Request-Id", opts.requestId]);
  if (opts.editResponse) headers = opts.editResponse(headers);
  if (answer.status === 101) {
    const browser = res.switchProtocols(answer.statusText, headers);
    const count = (n: number) => outcome.bytesOut += n;
    const results = await Promise.allSettled([
      pipeBody(browser.source, writer.raw(), { onChunk: (n) => outcome.bytesIn += n }),
      pipeBody(reader.raw(), browser.sink, { onChunk: count }),
    ]);
    outcome.aborted = results.some((r) => r.status === "rejected");
    return outcome;
  }
  res.head(answer.status, answer.statusText, headers);
  // A refused upgrade leaves the request half open (raw bytes would have followed a 101): end it.
  if (upgrade) writer.end();
  try {
    await pipeBody(reader, res.body, { onChunk: (n) => outcome.bytesOut += n });
  } catch {
    outcome.aborted = true;
  }
  return outcome;
}

const UPGRADE_KEEP: ReadonlySet<string> = new Set(["upgrade", "connection"]);

/** The request's head, encoded (once: encoding also validates it; a request that cannot be sent is a 400). */
function requestHead(req: FrontRequest, opts: ForwardOptions, upgrade: boolean): Uint8Array {
  const fields: HeadFields = {
    requestId: opts.requestId,
    method: req.method,
    target: req.target,
    headers: requestHeaderLines(opts.requestHeaders ?? req.headers, {
      requestId: opts.requestId,
      remoteAddr: req.remoteAddr,
      proto: req.proto,
      host: opts.host,
      trustedPeer: opts.trustedPeer,
    }, upgrade),
    remoteAddr: req.remoteAddr,
    proto: req.proto,
    host: opts.host,
    hasBody: req.body !== null,
  };
  try {
    return encode(upgrade ? { type: "UPGRADE_HEAD", ...fields } : { type: "REQUEST_HEAD", ...fields });
  } catch (e) {
    if (e instanceof ProtocolError) {
      throw new TunnelError(400, "bad_request", `request cannot be forwarded: ${e.message}`);
    }
    throw e;
  }
}

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
 * Pipes the browser's body into the tunnel, restarting the answer deadline per chunk. A browser body
 * that breaks resets the stream; a stream that stops accepting (the client answered early or died)
 * cancels the browser body.
 */
function sendBody(
  body: ByteSource,
  writer: TunnelStreamWriter,
  stream: TransportStream,
  outcome: ForwardOutcome,
  progress: () => void,
): void {
  stream.onWriteError(() => body.cancel());
  pipeBody(body, writer, {
    onChunk(n) {
      outcome.bytesIn += n;
      progress();
    },
  }).catch(() => stream.reset(ResetCode.CANCELLED));
}

/** Turns a failure before the client's answer into a TunnelError, resetting the stream as it goes. */
export function classifyFailure(e: unknown, stream: TransportStream | undefined): TunnelError {
  if (e instanceof TunnelLocalError) return e;
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
  return new TunnelDroppedError(`tunnel stream closed before the response: ${message}`, { cause: e });
}
