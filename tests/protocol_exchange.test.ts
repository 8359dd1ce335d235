/**
 * The request-stream adapter over the real transport (Connections over an in-memory link, real time):
 * heads, DATA passed through, TRAILERS, FIN, raw bytes after a switch, and malformed streams.
 */
import { assertEquals, assertMatch, assertRejects } from "./support/assert.ts";
import { createHash } from "node:crypto";
import { Connection } from "../lib/transport/connection.ts";
import { createMemoryLink } from "../lib/testing/memory_link.ts";
import type { TransportConnection, TransportStream } from "../lib/transport/types.ts";
import { type ByteSource, type HeaderLine, latin1Bytes, pipeBody } from "../lib/protocol/body.ts";
import { TunnelStreamReader, TunnelStreamWriter } from "../lib/protocol/exchange.ts";
import { encode, type Message, type RequestHead } from "../lib/protocol/mod.ts";

async function pair(fn: (a: TransportConnection, b: TransportConnection) => Promise<void>) {
  const link = createMemoryLink({});
  const a = new Connection(link.a, { role: "client" });
  const b = new Connection(link.b, { role: "server" });
  try {
    await fn(a, b);
  } finally {
    await a.close(0, "test over");
    await b.closed;
  }
}

function head(target: string, hasBody: boolean): RequestHead {
  return {
    type: "REQUEST_HEAD",
    requestId: "r1",
    method: "POST",
    target,
    headers: [["Content-Type", "text/plain"], ["X-Dup", "1"], ["x-dup", "2"]],
    remoteAddr: "198.51.100.7",
    proto: "https",
    host: "app.test",
    hasBody,
  };
}

/** Accepts the next stream and reads its head; resolves with the head and the reader. */
function nextHead(
  conn: TransportConnection,
): Promise<{ message: Message; reader: TunnelStreamReader; stream: TransportStream }> {
  return new Promise((resolve, reject) => {
    conn.onStream((stream) => {
      const reader: TunnelStreamReader = new TunnelStreamReader(stream, {
        head: (message) => resolve({ message, reader, stream }),
        fail: reject,
      });
    });
  });
}

/** Collects a body: bytes, SHA-256 and trailers; pauses for `pauseMs` after every chunk when set. */
function collect(source: ByteSource, pauseMs = 0) {
  const hash = createHash("sha256");
  let bytes = 0;
  const parts: Uint8Array[] = [];
  return new Promise<{ bytes: number; sha256: string; trailers: HeaderLine[] | null; text: string }>(
    (resolve, reject) => {
      source.start({
        data(chunk) {
          hash.update(chunk);
          bytes += chunk.length;
          if (bytes < 4096) parts.push(chunk.slice());
          if (pauseMs > 0) {
            source.pause();
            setTimeout(() => source.resume(), pauseMs);
          }
        },
        end(trailers) {
          const text = new TextDecoder().decode(Uint8Array.from(parts.flatMap((p) => [...p])));
          resolve({ bytes, sha256: hash.digest("hex"), trailers, text });
        },
        error: reject,
      });
    },
  );
}

Deno.test("a head, a small body and trailers cross as they were, raw target bytes included", async () => {
  await pair(async (a, b) => {
    const arriving = nextHead(b);
    const stream = await a.openStream();
    const writer = new TunnelStreamWriter(stream);
    const target = "/a/\xed\x95\x9c?q=\xed\x95\x9c%41";
    writer.head(head(target, true));
    writer.write(new TextEncoder().encode("hello "));
    writer.write(new TextEncoder().encode("world"));
    writer.end([["X-Checksum", "abc"], ["x-checksum", "def"]]);
    const { message, reader } = await arriving;
    assertEquals(message.type, "REQUEST_HEAD");
    const h = message as RequestHead;
    assertEquals(latin1Bytes(h.target), latin1Bytes(target));
    assertEquals(h.headers, [["Content-Type", "text/plain"], ["X-Dup", "1"], ["x-dup", "2"]]);
    const body = await collect(reader);
    assertEquals(body.text, "hello world");
    assertEquals(body.trailers, [["X-Checksum", "abc"], ["x-checksum", "def"]]);
  });
});

Deno.test("20 MB pass through DATA with a slow reader, intact", async () => {
  await pair(async (a, b) => {
    const arriving = nextHead(b);
    const stream = await a.openStream();
    const writer = new TunnelStreamWriter(stream);
    writer.head(head("/upload", true));
    const block = new Uint8Array(1 << 20).map((_, i) => (i * 7) & 0xff);
    const sent = createHash("sha256");
    const source: ByteSource = (() => {
      let n = 0;
      let paused = false;
      let consumer: Parameters<ByteSource["start"]>[0];
      const pump = () => {
        while (!paused && n < 20) {
          sent.update(block);
          n++;
          consumer.data(block);
        }
        if (n === 20 && !paused) consumer.end(null);
      };
      return {
        start(c) {
          consumer = c;
          pump();
        },
        pause: () => paused = true,
        resume() {
          paused = false;
          queueMicrotask(pump);
        },
        cancel() {},
      };
    })();
    const piping = pipeBody(source, writer);
    const { reader } = await arriving;
    const body = await collect(reader, 1);
    await piping;
    assertEquals(body.bytes, 20 << 20);
    assertEquals(body.sha256, sent.digest("hex"));
    assertEquals(body.trailers, null);
  });
});

Deno.test("a malformed message after the head resets the stream and fails the body", async () => {
  await pair(async (a, b) => {
    const arriving = nextHead(b);
    const stream = await a.openStream();
    stream.write(encode(head("/x", true)));
    stream.write(encode({ type: "GOODBYE", reason: "not here" }));
    const { reader } = await arriving;
    await assertRejects(() => collect(reader), (e) => /GOODBYE where DATA/.test(String(e)));
  });
});

Deno.test("a stream that ends before its head reports a failure", async () => {
  await pair(async (a, b) => {
    const failed = new Promise<unknown>((resolve) => {
      b.onStream((stream) => {
        new TunnelStreamReader(stream, { head: () => resolve("head?"), fail: resolve });
      });
    });
    const stream = await a.openStream();
    stream.write(new Uint8Array([0x10, 0, 0]));
    stream.finish();
    const e = await failed;
    assertMatch(String(e), /stream ended before a head/);
  });
});

Deno.test("after a switch to raw, bytes cross untouched both ways", async () => {
  await pair(async (a, b) => {
    const arriving = nextHead(b);
    const stream = await a.openStream();
    const writer = new TunnelStreamWriter(stream);
    writer.head({ ...head("/ws", false), type: "UPGRADE_HEAD" });
    const raw = writer.raw();
    raw.write(new Uint8Array([0x81, 0x05, 0x10, 0x14, 0x15]));
    raw.end();
    const { message, reader } = await arriving;
    assertEquals(message.type, "UPGRADE_HEAD");
    const body = await collect(reader.raw());
    assertEquals(body.bytes, 5);
    assertEquals(body.trailers, null);
  });
});
