/**
 * In-memory TransportStream pairs and a fake TransportConnection pair, for unit tests of the
 * protocol and proxy layers. Built from TransformStreams, so backpressure holds; reset on
 * either end errors both directions on both ends, as RESET_STREAM + STOP_SENDING would.
 */
import type {
  ConnectionCloseInfo,
  ConnectionStats,
  StreamConsumer,
  TransportConnection,
  TransportStream,
} from "../../lib/transport/types.ts";

/** The error a reset end sees. */
export class StreamResetError extends Error {
  override readonly name = "StreamResetError";
  constructor(readonly code: number, readonly by: "local" | "remote" | "connection") {
    super(`stream reset (${by}) with code ${code}`);
  }
}

interface Pipe {
  transform: TransformStream<Uint8Array, Uint8Array>;
  error(e: unknown): void;
  /** Resolves when the writer closed (FIN sent) or the pipe errored. */
  finished: Promise<void>;
}

function pipe(): Pipe {
  let controller!: TransformStreamDefaultController<Uint8Array>;
  let finish!: () => void;
  const finished = new Promise<void>((r) => finish = r);
  const transform = new TransformStream<Uint8Array, Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      transform(chunk, c) {
        // Copy: a real transport never hands the sender's buffer to the receiver.
        c.enqueue(chunk.slice());
      },
      flush() {
        finish();
      },
    },
    { highWaterMark: 4 },
    { highWaterMark: 4 },
  );
  return {
    transform,
    error(e) {
      try {
        controller.error(e);
      } catch { /* already errored or closed */ }
      finish();
    },
    finished,
  };
}

/** One end of an in-memory stream. */
export class MemoryStream implements TransportStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  readonly done: Promise<void>;
  /** The code this end was reset with (by either side), if any. */
  resetCode: number | undefined;
  peer!: MemoryStream;

  constructor(readonly id: number, readonly incoming: Pipe, readonly outgoing: Pipe) {
    this.readable = incoming.transform.readable;
    this.writable = outgoing.transform.writable;
    this.done = Promise.all([incoming.finished, outgoing.finished]).then(() => {});
  }

  reset(code: number): void {
    this.#abandon(code, "local");
    this.peer.#abandon(code, "remote");
  }

  // The callback face of TransportStream, over the Web streams (tests only: one face per stream).
  #paused = false;
  #resume: (() => void) | undefined;
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;

  read(consumer: StreamConsumer): void {
    const reader = this.readable.getReader();
    (async () => {
      for (;;) {
        while (this.#paused) await new Promise<void>((r) => this.#resume = r);
        const { done, value } = await reader.read();
        if (done) return consumer.end();
        consumer.data(value);
      }
    })().catch((e) => consumer.error(e));
  }

  pauseReading(): void {
    this.#paused = true;
  }

  resumeReading(): void {
    this.#paused = false;
    this.#resume?.();
    this.#resume = undefined;
  }

  stopReading(code: number): void {
    this.incoming.error(new StreamResetError(code, "local"));
  }

  #w(): WritableStreamDefaultWriter<Uint8Array> {
    this.#writer ??= this.writable.getWriter();
    return this.#writer;
  }

  write(chunk: Uint8Array): boolean {
    const w = this.#w();
    w.write(chunk).catch(() => {});
    return (w.desiredSize ?? 0) > 0;
  }

  onDrain(callback: () => void): void {
    const w = this.#w();
    const wait = () => w.ready.then(() => callback(), () => {});
    wait();
  }

  onWriteError(callback: (error: unknown) => void): void {
    this.#w().closed.catch(callback);
  }

  finish(): void {
    this.#w().close().catch(() => {});
  }

  /** Used by the fake connection when it dies. */
  kill(reason: string): void {
    const e = new StreamResetError(0, "connection");
    e.message = reason;
    this.#abandon(0, "connection", e);
  }

  #abandon(code: number, by: StreamResetError["by"], e = new StreamResetError(code, by)): void {
    if (this.resetCode !== undefined) return;
    this.resetCode = code;
    this.incoming.error(e);
    this.outgoing.error(e);
  }
}

/** Two connected in-memory stream ends with the same id. */
export function streamPair(id = 0): [MemoryStream, MemoryStream] {
  const ab = pipe();
  const ba = pipe();
  const a = new MemoryStream(id, ba, ab);
  const b = new MemoryStream(id, ab, ba);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

const zeroStats: ConnectionStats = {
  smoothedRttMs: 0,
  minRttMs: 0,
  congestionWindow: 0,
  bytesInFlight: 0,
  packetsSent: 0,
  packetsLost: 0,
  retransmittedFrames: 0,
  maxDatagramSize: 0,
  openStreams: 0,
};

/** A fake connection end: openStream hands the other end of a fresh pair to the peer's onStream handler. */
export class FakeConnection implements TransportConnection {
  peer!: FakeConnection;
  readonly streams = new Set<MemoryStream>();
  readonly closed: Promise<ConnectionCloseInfo>;
  #resolveClosed!: (info: ConnectionCloseInfo) => void;
  #handler: ((s: TransportStream) => void) | undefined;
  #queued: TransportStream[] = [];
  #isClosed = false;
  #nextId: number;

  constructor(firstId: number) {
    this.#nextId = firstId;
    this.closed = new Promise((r) => this.#resolveClosed = r);
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  openStream(): Promise<TransportStream> {
    if (this.#isClosed) return Promise.reject(new Error("connection closed"));
    const [mine, theirs] = streamPair(this.#nextId);
    this.#nextId += 4;
    this.streams.add(mine);
    this.peer.streams.add(theirs);
    this.peer.#deliver(theirs);
    return Promise.resolve(mine);
  }

  onStream(handler: (stream: TransportStream) => void): void {
    this.#handler = handler;
    for (const s of this.#queued.splice(0)) handler(s);
  }

  #deliver(s: TransportStream): void {
    if (this.#handler) queueMicrotask(() => this.#handler!(s));
    else this.#queued.push(s);
  }

  close(code = 0, reason = ""): Promise<void> {
    this.#end({ kind: "local", code, reason }, { kind: "remote", code, reason });
    return Promise.resolve();
  }

  abort(code = 0, reason = "aborted"): void {
    this.#end({ kind: "local", code, reason }, { kind: "remote", code, reason });
  }

  #end(mine: ConnectionCloseInfo, theirs: ConnectionCloseInfo): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.peer.#isClosed = true;
    for (const s of this.streams) s.kill(`connection closed: ${mine.reason}`);
    for (const s of this.peer.streams) s.kill(`connection closed: ${theirs.reason}`);
    this.#resolveClosed(mine);
    this.peer.#resolveClosed(theirs);
  }

  stats(): ConnectionStats {
    return { ...zeroStats, openStreams: this.streams.size };
  }
}

/** A connected pair: [server end, client end]. As in QUIC, client-opened ids are 0 mod 4, server-opened 1 mod 4. */
export function connectionPair(): [FakeConnection, FakeConnection] {
  const server = new FakeConnection(1);
  const client = new FakeConnection(0);
  server.peer = client;
  client.peer = server;
  return [server, client];
}
