/**
 * Server side of an HTTP/1.1 Upgrade (WebSocket or any other protocol): send UPGRADE_HEAD on
 * a new stream, wait for the client's first bytes, then relay raw bytes between the browser's
 * socket and the stream. The local service's 101 answer and everything after it pass through
 * untouched. The client's first bytes are either an ERROR frame (type byte < 0x20) or the
 * local HTTP/1.x status line (which starts with "H", 0x48), so one byte tells them apart.
 */
import { systemClock } from "../log/clock.ts";
import {
  encode,
  type HeaderLine,
  MessageReader,
  ProtocolError,
  ResetCode,
  type UpgradeHead,
} from "../protocol/mod.ts";
import type { TransportConnection, TransportStream } from "../transport/types.ts";
import { startDeadline } from "./deadline.ts";
import { TunnelDroppedError, TunnelError, TunnelLocalError } from "./errors.ts";
import { requestHeaderLines } from "./headers.ts";
import { classifyFailure, type ForwardOptions } from "./server_forward.ts";

/** The browser's upgrade request as the front parsed it. */
export interface UpgradeRequest {
  method: string;
  /** Path and query, starting with "/". */
  path: string;
  headers: Headers | Iterable<HeaderLine>;
}

/** The browser's socket as raw bytes. */
export interface ByteDuplex {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
}

/** Either the relay started (`done` settles when both directions end) or nothing was written to the socket. */
export type UpgradeResult =
  | { ok: true; done: Promise<void> }
  | { ok: false; error: TunnelError };

function pathOf(url: string): string {
  const u = new URL(url);
  return u.pathname + u.search;
}

/** Below this, a first byte is a frame type; an HTTP/1.x answer starts with "H". */
const FRAME_TYPE_LIMIT = 0x20;

async function awaitLocalAnswer(reader: MessageReader): Promise<void> {
  const first = await reader.peekByte();
  if (first === null) {
    throw new TunnelDroppedError("the tunnel client closed the upgrade stream without answering");
  }
  if (first < FRAME_TYPE_LIMIT) {
    const err = await reader.expect("ERROR");
    throw new TunnelLocalError(err.code, err.message);
  }
}

/** Relays socket ⇄ stream until both directions end; errors on one side tear down the other. */
function relay(socket: ByteDuplex, stream: TransportStream, reader: MessageReader): Promise<void> {
  const down = reader.rest().pipeTo(socket.writable).catch((e) => {
    stream.reset(ResetCode.CANCELLED);
    socket.readable.cancel(e).catch(() => {});
    throw e;
  });
  const up = (async () => {
    const writer = stream.writable.getWriter();
    const source = socket.readable.getReader();
    try {
      for (;;) {
        const { done, value } = await source.read();
        if (done) break;
        await writer.write(value);
      }
      await writer.close();
    } catch (e) {
      stream.reset(ResetCode.CANCELLED);
      source.cancel(e).catch(() => {});
      throw e;
    }
  })();
  return Promise.allSettled([down, up]).then(() => {});
}

/**
 * Opens an UPGRADE stream for `request` and, once the local service answers, relays bytes
 * between `socket` and the stream. On `{ ok: false }` nothing was written to the socket: the
 * front answers with `error.status` (see rawHttpResponse) and closes it.
 */
export async function forwardUpgrade(
  request: UpgradeRequest | Request,
  socket: ByteDuplex,
  connection: TransportConnection,
  opts: ForwardOptions,
): Promise<UpgradeResult> {
  let head: UpgradeHead;
  try {
    head = {
      type: "UPGRADE_HEAD",
      requestId: opts.requestId,
      method: request.method,
      path: request instanceof Request ? pathOf(request.url) : request.path,
      headers: requestHeaderLines(request.headers, opts, true),
      remoteAddr: opts.remoteAddr,
      proto: opts.proto,
      host: opts.host,
      hasBody: false,
    };
    encode(head);
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    return {
      ok: false,
      error: new TunnelError(400, "bad_request", `upgrade cannot be forwarded: ${e.message}`),
    };
  }

  const deadline = startDeadline(opts.clock ?? systemClock, opts.timeoutMs, opts.signal);
  let stream: TransportStream | undefined;
  try {
    const opening = connection.openStream();
    opening.catch(() => {});
    stream = await deadline.race(opening).catch((e) => {
      opening.then((s) => s.reset(ResetCode.CANCELLED), () => {});
      throw e;
    });
    const writer = stream.writable.getWriter();
    await deadline.race(writer.write(encode(head)));
    writer.releaseLock();
    const reader = new MessageReader(stream.readable);
    await deadline.race(awaitLocalAnswer(reader));
    deadline.clear();
    return { ok: true, done: relay(socket, stream, reader) };
  } catch (e) {
    deadline.clear();
    return { ok: false, error: classifyFailure(e, stream, "upgrade answer") };
  }
}

const encoder = new TextEncoder();

/** Serializes a (small) Response as raw HTTP/1.1 with `Connection: close`, for writing to an upgrade socket. */
export async function rawHttpResponse(response: Response): Promise<Uint8Array> {
  const body = new Uint8Array(await response.arrayBuffer());
  const lines = [`HTTP/1.1 ${response.status} ${response.statusText || "Error"}`];
  for (const [n, v] of response.headers) {
    if (n !== "content-length" && n !== "connection" && n !== "transfer-encoding") lines.push(`${n}: ${v}`);
  }
  lines.push(`content-length: ${body.length}`, "connection: close");
  const headBytes = encoder.encode(lines.join("\r\n") + "\r\n\r\n");
  const out = new Uint8Array(headBytes.length + body.length);
  out.set(headBytes);
  out.set(body, headBytes.length);
  return out;
}
