/**
 * The CONTROL stream: the first stream a client opens. HELLO → WELCOME | REJECT, then either
 * side may send GOODBYE {reason} just before closing.
 */
import {
  encode,
  type Hello,
  MessageReader,
  PROTOCOL_VERSION,
  ResetCode,
  type Welcome,
} from "../protocol/mod.ts";
import type { TransportConnection, TransportStream } from "../transport/types.ts";

/** One end of an established control stream. */
export interface ControlChannel {
  /** Sends GOODBYE and finishes the stream; best effort, never throws. */
  goodbye(reason: string): Promise<void>;
  /** The peer's GOODBYE reason, or null if the stream ended (or broke) without one. */
  readonly peerGoodbye: Promise<string | null>;
}

/** The server's verdict on a HELLO. */
export type HelloVerdict =
  | { accept: true; sessionId: string; domain: string; publicUrl: string }
  | { accept: false; code: string; message: string };

export type AcceptResult =
  | { kind: "accepted"; hello: Hello; welcome: Welcome; control: ControlChannel }
  | { kind: "rejected"; code: string; message: string };

/** The client refused by the server: `code` is the server's REJECT code. */
export class HandshakeRejectedError extends Error {
  override readonly name = "HandshakeRejectedError";
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

function channel(stream: TransportStream, reader: MessageReader): ControlChannel {
  const writer = stream.writable.getWriter();
  let sent = false;
  const peerGoodbye = (async () => {
    try {
      for (;;) {
        const m = await reader.next();
        if (m === null) return null;
        if (m.type === "GOODBYE") return m.reason;
      }
    } catch {
      return null;
    }
  })();
  return {
    async goodbye(reason) {
      if (sent) return;
      sent = true;
      try {
        await writer.write(encode({ type: "GOODBYE", reason: reason.slice(0, 1000) }));
        await writer.close();
      } catch {
        // The peer is already gone.
      }
    },
    peerGoodbye,
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) =>
      timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)
    ),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Server side: waits for the client's control stream and HELLO, asks `decide`, answers WELCOME
 * or REJECT. Unsupported protocol versions are rejected before `decide`. Any later stream the
 * client opens is reset (clients only open the control stream). Throws on timeout or a bad
 * HELLO; closing the connection is the caller's job.
 */
export async function acceptControl(
  connection: TransportConnection,
  decide: (hello: Hello) => HelloVerdict | Promise<HelloVerdict>,
  timeoutMs = 10_000,
): Promise<AcceptResult> {
  let first: TransportStream | undefined;
  const opened = new Promise<TransportStream>((resolve) => {
    connection.onStream((s) => {
      if (first === undefined) {
        first = s;
        resolve(s);
      } else {
        s.reset(ResetCode.PROTOCOL_ERROR);
      }
    });
  });
  const stream = await withTimeout(opened, timeoutMs, "no control stream");
  const reader = new MessageReader(stream.readable);
  let hello: Hello;
  try {
    hello = await withTimeout(reader.expect("HELLO"), timeoutMs, "no HELLO");
  } catch (e) {
    stream.reset(ResetCode.PROTOCOL_ERROR);
    throw e;
  }
  const verdict: HelloVerdict = hello.protocolVersion !== PROTOCOL_VERSION
    ? {
      accept: false,
      code: "unsupported_protocol",
      message:
        `server speaks protocol ${PROTOCOL_VERSION}, client sent ${hello.protocolVersion}: upgrade the client`,
    }
    : await decide(hello);
  if (!verdict.accept) {
    const writer = stream.writable.getWriter();
    try {
      await writer.write(encode({ type: "REJECT", code: verdict.code, message: verdict.message }));
      await writer.close();
    } catch { /* the client is gone */ }
    return { kind: "rejected", code: verdict.code, message: verdict.message };
  }
  const welcome: Welcome = {
    type: "WELCOME",
    sessionId: verdict.sessionId,
    domain: verdict.domain,
    publicUrl: verdict.publicUrl,
  };
  const writer = stream.writable.getWriter();
  await writer.write(encode(welcome));
  writer.releaseLock();
  return { kind: "accepted", hello, welcome, control: channel(stream, reader) };
}

/**
 * Client side: opens the control stream, sends HELLO, waits for WELCOME. Throws
 * HandshakeRejectedError on REJECT.
 */
export async function openControl(
  connection: TransportConnection,
  hello: { clientVersion: string; services: string[] },
  timeoutMs = 10_000,
): Promise<{ welcome: Welcome; control: ControlChannel }> {
  const stream = await connection.openStream();
  const writer = stream.writable.getWriter();
  await writer.write(encode({ type: "HELLO", protocolVersion: PROTOCOL_VERSION, ...hello }));
  writer.releaseLock();
  const reader = new MessageReader(stream.readable);
  const answer = await withTimeout(reader.expect("WELCOME", "REJECT"), timeoutMs, "no WELCOME").catch((e) => {
    stream.reset(ResetCode.CANCELLED);
    throw e;
  });
  if (answer.type === "REJECT") throw new HandshakeRejectedError(answer.code, answer.message);
  return { welcome: answer, control: channel(stream, reader) };
}
