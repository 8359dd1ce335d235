/**
 * Adapters between node streams (node:http / node:http2 requests, responses and sockets) and the
 * data path's callback bodies (ByteSource / ByteSink), with backpressure both ways.
 */
import type { Duplex, Readable } from "node:stream";
import type { ByteConsumer, ByteSink, ByteSource, HeaderLine, RawDuplex } from "../protocol/body.ts";

/** What a request body is written into (a ClientRequest or an Http2Stream). */
export interface NodeWritable {
  write(chunk: Uint8Array): boolean;
  once(event: "drain", listener: () => void): unknown;
}

/** A chunk as a plain Uint8Array view (a Buffer's `slice` shares memory, which a consumer may not expect). */
export function plainBytes(chunk: Uint8Array): Uint8Array {
  return chunk.constructor === Uint8Array
    ? chunk
    : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/** `[n1, v1, n2, v2…]` (node's rawHeaders) as header lines. */
export function headerPairs(raw: readonly string[]): HeaderLine[] {
  const out: HeaderLine[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

/**
 * Writes a request body source into `out`, pausing the source while `out` is above its
 * high-water mark. `end`/`error` report the source's outcome.
 */
export function pumpBody(
  source: ByteSource,
  out: NodeWritable,
  on: { end(trailers: HeaderLine[] | null): void; error(e: Error): void },
): void {
  let waiting = false;
  const consumer: ByteConsumer = {
    data(chunk) {
      if (out.write(chunk) || waiting) return;
      waiting = true;
      source.pause();
      out.once("drain", () => {
        waiting = false;
        source.resume();
      });
    },
    end: (trailers) => on.end(trailers),
    error: (e) => on.error(e),
  };
  source.start(consumer);
}

/**
 * Streams a node response's data into `sink`, pausing the response while the sink is full. The
 * caller ends the sink on 'end' (only it knows whether the body was complete).
 */
export function pipeToSink(res: Readable, sink: ByteSink): void {
  sink.onDrain(() => res.resume());
  res.on("data", (chunk: Uint8Array) => {
    if (!sink.write(plainBytes(chunk))) res.pause();
  });
}

/** An upgraded connection as a RawDuplex: `head` (bytes read past the 101 head) comes first. */
export function socketDuplex(socket: Duplex, head: Uint8Array): RawDuplex {
  let consumer: ByteConsumer | null = null;
  let finished = false;
  const finish = (f: (c: ByteConsumer) => void) => {
    if (finished || !consumer) return;
    finished = true;
    f(consumer);
  };
  const source: ByteSource = {
    start(c) {
      if (consumer) throw new Error("socketDuplex: the source already has a consumer");
      consumer = c;
      if (head.byteLength > 0) c.data(plainBytes(head));
      socket.on("data", (chunk: Uint8Array) => consumer!.data(plainBytes(chunk)));
      socket.once("end", () => finish((c) => c.end(null)));
      socket.once("error", (e: Error) => finish((c) => c.error(e)));
      socket.once("close", () => finish((c) => c.error(new Error("the local connection closed"))));
      socket.resume();
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    cancel: (reason) => socket.destroy(reason),
  };
  const sink: ByteSink = {
    write: (chunk) => socket.write(chunk),
    onDrain: (callback) => socket.on("drain", callback),
    end: () => socket.end(),
    abort: (reason) => socket.destroy(reason),
  };
  // The tunnel carries half-closes: the browser ending its side must not end the local side's.
  (socket as Duplex & { allowHalfOpen: boolean }).allowHalfOpen = true;
  socket.pause();
  return { source, sink };
}
