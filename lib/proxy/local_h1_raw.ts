/** An upgraded local connection (after 101) as a RawDuplex, for the lean HTTP/1.1 path. */
import type { ByteConsumer, ByteSource, RawDuplex } from "../protocol/body.ts";
import type { LocalConn } from "./local_h1_conn.ts";

/** The connection's raw bytes: `rest` (read past the 101 head) first; half-closes pass both ways. */
export function rawConnDuplex(conn: LocalConn, rest: Uint8Array): RawDuplex {
  let consumer: ByteConsumer | null = null;
  let finished = false;
  // Until the source is started, bytes and the outcome wait here (the connection is paused).
  const held: Uint8Array[] = rest.byteLength > 0 ? [rest] : [];
  let outcome: ((c: ByteConsumer) => void) | null = null;
  const settle = (f: (c: ByteConsumer) => void) => {
    if (finished) return;
    if (!consumer) {
      outcome ??= f;
      return;
    }
    finished = true;
    f(consumer);
  };
  conn.pause();
  conn.owner = {
    data: (chunk) => consumer ? consumer.data(chunk.slice()) : void held.push(chunk.slice()),
    end: () => settle((c) => c.end(null)),
    error: (e) => settle((c) => c.error(e)),
    closed: () => settle((c) => c.error(new Error("the local connection closed"))),
  };
  const source: ByteSource = {
    start(c) {
      if (consumer) throw new Error("rawConnDuplex: the source already has a consumer");
      consumer = c;
      for (const chunk of held.splice(0)) c.data(chunk);
      if (outcome) settle(outcome);
      else conn.resume();
    },
    pause: () => conn.pause(),
    resume: () => conn.resume(),
    cancel: () => conn.close(),
  };
  return {
    source,
    sink: {
      write: (chunk) => conn.write(chunk),
      onDrain: (callback) => void (conn.onDrain = callback),
      end: () => conn.endWrite(),
      abort: () => conn.close(),
    },
  };
}
