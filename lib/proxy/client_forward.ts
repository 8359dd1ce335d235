/**
 * Client side of a tunnel stream, HTTP and upgrade alike: read the head, replay the request against
 * the local service with the byte-faithful local client (sendLocal: no decoding, nothing added,
 * Content-Length and trailers kept, h2c for gRPC and h2c:// services), and write the answer back: a
 * RESPONSE_HEAD and the body, or, when the origin switches protocols, the 101 and raw bytes both ways.
 */
import type { Logger } from "../log/logger.ts";
import { pathOf } from "./prefix.ts";
import { type Clock, systemClock } from "../log/clock.ts";
import { type ByteSink, type ByteSource, type HeaderLine, pipeBody } from "../protocol/body.ts";
import { TunnelStreamReader, TunnelStreamWriter } from "../protocol/exchange.ts";
import {
  type HeadFields,
  type Message,
  ProtocolError,
  ResetCode,
  type TunnelErrorCode,
} from "../protocol/mod.ts";
import type { TransportStream } from "../transport/types.ts";
import { dropHopByHop, headerValue } from "./headers.ts";
import {
  type HostMode,
  type LocalService,
  localTarget,
  pickService,
  type ServedRequest,
  servedRequestReporter,
  serviceOrigin,
} from "./local_target.ts";
import { sendLocal } from "./local_http.ts";
import type { ExchangeObserver } from "./exchange_observer.ts";

export interface HandleStreamOptions {
  services: readonly LocalService[];
  hostMode: HostMode;
  logger: Logger;
  onRequest?(info: ServedRequest): void;
  /** Sees every exchange (the request inspector). */
  observer?: ExchangeObserver;
  clock?: Clock;
}

const UPGRADE_KEEP: ReadonlySet<string> = new Set(["upgrade", "connection"]);

/** Serves one stream the server opened; resolves when the stream is done. Never throws. */
export function handleStream(stream: TransportStream, opts: HandleStreamOptions): Promise<void> {
  const writer = new TunnelStreamWriter(stream);
  const reader: TunnelStreamReader = new TunnelStreamReader(stream, {
    head: (message) => serve(message, reader, writer, stream, opts),
    fail(e) {
      if (e instanceof ProtocolError) {
        opts.logger.warn({ err: e.message, code: e.code }, "tunnel stream with a bad head");
      } else opts.logger.debug({ err: String(e) }, "tunnel stream ended before its head");
    },
  });
  return stream.done;
}

/** The header lines for the local service: Host kept, added (HTTP/2 requests have none) or rewritten. */
function localHeaders(head: HeadFields, mode: HostMode, service: LocalService): HeaderLine[] {
  const host = mode === "preserve" ? head.host : service.target.host;
  const i = head.headers.findIndex(([n]) => n.length === 4 && n.toLowerCase() === "host");
  if (i === -1) return [["Host", host], ...head.headers];
  if (mode === "preserve") return head.headers;
  const lines = head.headers.slice();
  lines[i] = [lines[i][0], host];
  return lines;
}

function serve(
  message: Message,
  reader: TunnelStreamReader,
  writer: TunnelStreamWriter,
  stream: TransportStream,
  opts: HandleStreamOptions,
): void {
  if (message.type !== "REQUEST_HEAD" && message.type !== "UPGRADE_HEAD") {
    opts.logger.warn({ type: message.type }, "tunnel stream did not start with a request head");
    stream.reset(ResetCode.PROTOCOL_ERROR);
    return;
  }
  const upgrade = message.type === "UPGRADE_HEAD";
  const path = pathOf(message.target);
  const clock = opts.clock ?? systemClock;
  const { info, report } = servedRequestReporter({ ...message, path }, upgrade, clock, opts.onRequest);
  const answerError = (code: TunnelErrorCode, text: string) => {
    reader.cancel();
    writer.head({ type: "ERROR", code, message: text.slice(0, 4000) }, true);
    info.status = code === "no_service" ? 404 : 502;
    info.error = code;
  };
  stream.done.then(() => report());

  const service = pickService(opts.services, path);
  if (!service) return answerError("no_service", `no local service is configured for ${path}`);
  const { origin, h2c } = serviceOrigin(service);
  const headers = localHeaders(message, opts.hostMode, service);
  const grpc = /^application\/grpc/i.test(headerValue(headers, "content-type") ?? "");
  const capture = opts.observer?.begin({
    requestId: message.requestId,
    method: message.method,
    target: message.target,
    headers,
    localUrl: origin.href,
  });
  const countIn = (n: number) => info.bytesIn += n;
  const body = message.hasBody && !upgrade ? reader : null;
  const lengthValue = headerValue(headers, "content-length");
  const call = sendLocal(origin, {
    method: message.method,
    target: localTarget(service, message.target),
    headers,
    body: body && tapSource(body, (chunk) => {
      countIn(chunk.length);
      capture?.requestBody(chunk);
    }),
    contentLength: lengthValue !== undefined && /^\d+$/.test(lengthValue) ? Number(lengthValue) : undefined,
    protocol: h2c || grpc ? "h2c" : "h1",
    upgrade,
  }, {
    head(status, statusText, responseHeaders) {
      info.status = status;
      capture?.response(status, statusText, responseHeaders);
      writer.head({ type: "RESPONSE_HEAD", status, statusText, headers: dropHopByHop(responseHeaders) });
      // A refused upgrade: the server ends its half when it sees this answer; nothing to read here.
      if (upgrade) reader.cancel();
      return tapSink(writer, (chunk) => {
        info.bytesOut += chunk.length;
        capture?.responseBody(chunk);
      }, (error) => capture?.end({ error }));
    },
    upgraded(statusText, responseHeaders, raw) {
      info.status = 101;
      capture?.response(101, statusText, responseHeaders);
      capture?.end({});
      writer.head({
        type: "RESPONSE_HEAD",
        status: 101,
        statusText,
        headers: dropHopByHop(responseHeaders, UPGRADE_KEEP),
      });
      const up = pipeBody(reader.raw(), raw.sink, { onChunk: countIn });
      const down = pipeBody(raw.source, writer.raw(), { onChunk: (n) => info.bytesOut += n });
      Promise.allSettled([up, down]).then((r) => {
        if (r.some((x) => x.status === "rejected")) info.error = "reset";
      });
    },
    error(e) {
      const text = `${origin.host}: ${e.message}`;
      // No child logger per request: pino's child set-up (redaction paths) costs more than the request.
      opts.logger.warn(
        { request_id: message.requestId, path, code: e.code, err: text },
        "local service failed",
      );
      capture?.end({ error: e.code });
      answerError(e.code, text);
    },
  });
  // The server reset the stream (browser gone, timeout): drop the local request too.
  stream.onWriteError(() => {
    info.error ??= "reset";
    call.abort(new Error("tunnel stream reset"));
  });
}

/** A source that shows each chunk to `see` on its way to the consumer. */
function tapSource(source: ByteSource, see: (chunk: Uint8Array) => void): ByteSource {
  return {
    start: (consumer) =>
      source.start({
        data(chunk) {
          see(chunk);
          consumer.data(chunk);
        },
        end: (trailers) => consumer.end(trailers),
        error: (e) => consumer.error(e),
      }),
    pause: () => source.pause(),
    resume: () => source.resume(),
    cancel: (reason) => source.cancel(reason),
  };
}

/** A sink that shows each chunk to `see` and its end to `ended`. */
function tapSink(
  sink: ByteSink,
  see: (chunk: Uint8Array) => void,
  ended: (error?: string) => void,
): ByteSink {
  return {
    write(chunk) {
      see(chunk);
      return sink.write(chunk);
    },
    onDrain: (cb) => sink.onDrain(cb),
    end(trailers) {
      ended();
      sink.end(trailers);
    },
    abort(reason) {
      ended("reset");
      sink.abort(reason);
    },
  };
}
