/**
 * The CONTROL stream: the first stream a client opens. HELLO → WELCOME | REJECT, then either
 * side may send GOODBYE {reason} just before closing. From protocol 2 on, the server may send
 * PING {seq} at any time and the client answers PONG {seq}: the server's liveness probe, since the
 * transport alone only notices a vanished peer at its idle timeout. The client may PING too (a
 * path probe, see path_probe.ts); the server answers PONG, and an older server that ignores it
 * still acknowledges the packet at the transport level, which is all the probe needs.
 */
import {
  encode,
  type Hello,
  MessageReader,
  MIN_PROTOCOL_VERSION,
  PING_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  ResetCode,
  type Welcome,
} from "../protocol/mod.ts";
import { type Clock, systemClock, type TimerId } from "../log/clock.ts";
import type { TransportConnection, TransportStream } from "../transport/types.ts";

/** One end of an established control stream. */
export interface ControlChannel {
  /** Sends GOODBYE and finishes the stream; best effort, never throws. */
  goodbye(reason: string): Promise<void>;
  /** The peer's GOODBYE reason, or null if the stream ended (or broke) without one. */
  readonly peerGoodbye: Promise<string | null>;
  /** True when the peer answers PING (server side, protocol ≥ 2 clients). */
  readonly canPing: boolean;
  /**
   * Sends PING and resolves true when the PONG arrives, false after `timeoutMs` or when the
   * stream is gone; true at once when the peer cannot answer (canPing false) or after GOODBYE.
   */
  ping(timeoutMs: number): Promise<boolean>;
  /** Sends one PING without waiting for the answer (a path probe); never throws. */
  nudge(): void;
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

export interface ControlOptions {
  /** Longest wait for the control stream, HELLO or WELCOME (default 10 s). */
  timeoutMs?: number;
  /** Times the handshake and the channel's PING deadlines (default: the real clock). */
  clock?: Clock;
}

interface ChannelRoles {
  /** This end answers PING with PONG (both ends do since the client may probe its path). */
  answerPings: boolean;
  /** The peer answers PING (a server facing a protocol ≥ 2 client). */
  peerAnswersPings: boolean;
}

function channel(
  stream: TransportStream,
  reader: MessageReader,
  roles: ChannelRoles,
  clock: Clock,
): ControlChannel {
  const writer = stream.writable.getWriter();
  let sent = false;
  let seq = 0;
  const pongs = new Map<number, (answered: boolean) => void>();
  const send = (m: Parameters<typeof encode>[0]) => writer.write(encode(m));
  const peerGoodbye = (async () => {
    try {
      for (;;) {
        const m = await reader.next();
        if (m === null) return null;
        if (m.type === "GOODBYE") return m.reason;
        if (m.type === "PING" && roles.answerPings && !sent) {
          send({ type: "PONG", seq: m.seq }).catch(() => {});
        }
        if (m.type === "PONG") pongs.get(m.seq)?.(true);
      }
    } catch {
      return null;
    } finally {
      for (const answer of pongs.values()) answer(false);
    }
  })();
  let ended = false;
  peerGoodbye.finally(() => (ended = true));
  return {
    async goodbye(reason) {
      if (sent) return;
      sent = true;
      try {
        await send({ type: "GOODBYE", reason: reason.slice(0, 1000) });
        await writer.close();
      } catch {
        // The peer is already gone.
      }
    },
    peerGoodbye,
    canPing: roles.peerAnswersPings,
    nudge() {
      if (sent || ended) return;
      seq = (seq + 1) % 0x1_0000_0000;
      send({ type: "PING", seq }).catch(() => {});
    },
    ping(timeoutMs) {
      if (!roles.peerAnswersPings || sent) return Promise.resolve(true);
      if (ended) return Promise.resolve(false);
      seq = (seq + 1) % 0x1_0000_0000;
      const n = seq;
      return new Promise<boolean>((resolve) => {
        const timer = clock.setTimeout(() => answer(false), timeoutMs);
        function answer(ok: boolean) {
          clock.clearTimeout(timer);
          pongs.delete(n);
          resolve(ok);
        }
        pongs.set(n, answer);
        send({ type: "PING", seq: n }).catch(() => answer(false));
      });
    },
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string, clock: Clock): Promise<T> {
  let timer: TimerId | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) =>
      timer = clock.setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)
    ),
  ]).finally(() => {
    if (timer !== undefined) clock.clearTimeout(timer);
  });
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
  options: ControlOptions = {},
): Promise<AcceptResult> {
  const { timeoutMs = 10_000, clock = systemClock } = options;
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
  const stream = await withTimeout(opened, timeoutMs, "no control stream", clock);
  const reader = new MessageReader(stream.readable);
  let hello: Hello;
  try {
    hello = await withTimeout(reader.expect("HELLO"), timeoutMs, "no HELLO", clock);
  } catch (e) {
    stream.reset(ResetCode.PROTOCOL_ERROR);
    throw e;
  }
  const supported = hello.protocolVersion >= MIN_PROTOCOL_VERSION &&
    hello.protocolVersion <= PROTOCOL_VERSION;
  const verdict: HelloVerdict = !supported
    ? {
      accept: false,
      code: "unsupported_protocol",
      message:
        `server speaks protocol ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}, client sent ${hello.protocolVersion}: ${
          hello.protocolVersion > PROTOCOL_VERSION ? "upgrade the server" : "upgrade the client"
        }`,
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
  const control = channel(stream, reader, {
    answerPings: true,
    peerAnswersPings: hello.protocolVersion >= PING_PROTOCOL_VERSION,
  }, clock);
  return { kind: "accepted", hello, welcome, control };
}

/**
 * Client side: opens the control stream, sends HELLO, waits for WELCOME. Throws
 * HandshakeRejectedError on REJECT.
 */
export async function openControl(
  connection: TransportConnection,
  hello: { clientVersion: string; services: string[] },
  options: ControlOptions = {},
): Promise<{ welcome: Welcome; control: ControlChannel }> {
  const { timeoutMs = 10_000, clock = systemClock } = options;
  const stream = await connection.openStream();
  const writer = stream.writable.getWriter();
  await writer.write(encode({ type: "HELLO", protocolVersion: PROTOCOL_VERSION, ...hello }));
  writer.releaseLock();
  const reader = new MessageReader(stream.readable);
  const answer = await withTimeout(reader.expect("WELCOME", "REJECT"), timeoutMs, "no WELCOME", clock).catch(
    (e) => {
      stream.reset(ResetCode.CANCELLED);
      throw e;
    },
  );
  if (answer.type === "REJECT") throw new HandshakeRejectedError(answer.code, answer.message);
  return {
    welcome: answer,
    control: channel(stream, reader, { answerPings: true, peerAnswersPings: false }, clock),
  };
}
