/**
 * Bodies as callbacks, not Web streams: the data path's currency between the fronts, the tunnel
 * stream adapter and the local HTTP client. A source pushes chunks to one consumer and can be
 * paused; a sink accepts chunks and says when it wants no more until it drains. Chunks change owner
 * when handed over: the producer never reuses or modifies a chunk it passed on.
 *
 * Header lines are "byte strings": one UTF-16 code unit per byte (latin1), exactly as received,
 * names with their original case. `latin1Bytes`/`latin1String` convert without loss.
 */

/** One header (or trailer) line; repeated names stay separate lines, in order. */
export type HeaderLine = [name: string, value: string];

/** What a source hands its consumer. */
export interface ByteConsumer {
  data(chunk: Uint8Array): void;
  /** The body ended cleanly, with its trailers (null when it had none). */
  end(trailers: HeaderLine[] | null): void;
  /** The body broke (peer reset, connection lost); nothing follows. */
  error(error: Error): void;
}

/** A body being received. Nothing flows until `start`; at most one consumer. */
export interface ByteSource {
  start(consumer: ByteConsumer): void;
  /** Stop delivering until `resume` (backpressure). */
  pause(): void;
  resume(): void;
  /** The consumer no longer wants the body; the source stops and releases what it holds. */
  cancel(reason?: Error): void;
}

/** A body being sent. */
export interface ByteSink {
  /** Queues a chunk; false means "above the high-water mark: wait for drain before writing more". */
  write(chunk: Uint8Array): boolean;
  /** Called once each time the sink drains after a `write` returned false. */
  onDrain(callback: () => void): void;
  /** Ends the body (with trailers, where the sink can carry them). */
  end(trailers?: HeaderLine[] | null): void;
  /** Abandons the body: the receiver sees an error, not a short body. */
  abort(reason?: Error): void;
}

/** Both directions of a raw byte connection (an upgraded HTTP/1.1 connection after 101). */
export interface RawDuplex {
  source: ByteSource;
  sink: ByteSink;
}

/**
 * Pipes a source into a sink with backpressure; `done` settles when the source ended (resolves,
 * after the sink was ended with the trailers) or either side failed (rejects, after aborting the
 * other side).
 */
export function pipeBody(
  source: ByteSource,
  sink: ByteSink,
  hooks: { onChunk?(n: number): void } = {},
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    sink.onDrain(() => source.resume());
    source.start({
      data(chunk) {
        hooks.onChunk?.(chunk.byteLength);
        if (!sink.write(chunk)) source.pause();
      },
      end(trailers) {
        sink.end(trailers);
        resolve();
      },
      error(error) {
        sink.abort(error);
        reject(error);
      },
    });
  });
}

/** The bytes of a byte string (each code unit's low 8 bits). */
export function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** The byte string of some bytes (never WHATWG "latin1", which is windows-1252). */
export function latin1String(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode.apply(null, b.subarray(i, i + 8192) as unknown as number[]);
  }
  return s;
}
