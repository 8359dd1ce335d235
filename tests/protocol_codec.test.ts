import { assert, assertEquals, assertThrows } from "./support/assert.ts";
import {
  decode,
  encode,
  FRAME_HEADER_BYTES,
  MAX_PAYLOAD_BYTES,
  type Message,
  MessageReader,
  ProtocolError,
} from "../lib/protocol/mod.ts";

const head = {
  requestId: "req-1",
  method: "POST",
  // Byte strings: raw UTF-8 in the target and in a header value cross as bytes.
  target: "/api/\xed\x95\x9c?x=1&y=%20&q=\xed\x95\x9c",
  headers: [["Accept", "text/html"], ["Set-Cookie", "a=1"], ["set-cookie", "b=2"], [
    "X-UTF8",
    "h\xc3\xa9llo",
  ]] as [
    string,
    string,
  ][],
  remoteAddr: "203.0.113.7",
  proto: "https" as const,
  host: "demo.example.com",
  hasBody: true,
};

const samples: Message[] = [
  { type: "HELLO", protocolVersion: 1, clientVersion: "0.1.0", services: ["/", "/api"] },
  { type: "WELCOME", sessionId: "s-1", domain: "demo.example.com", publicUrl: "https://demo.example.com" },
  { type: "REJECT", code: "bad_version", message: "protocol 9 is not served" },
  { type: "GOODBYE", reason: "key rotated" },
  { type: "REQUEST_HEAD", ...head },
  { type: "UPGRADE_HEAD", ...head, method: "GET", hasBody: false },
  {
    type: "RESPONSE_HEAD",
    status: 200,
    statusText: "OK",
    headers: [["set-cookie", "a=1"], ["set-cookie", "b=2"]],
  },
  { type: "RESPONSE_HEAD", status: 599, statusText: "", headers: [] },
  {
    type: "RESPONSE_HEAD",
    status: 101,
    statusText: "Switching Protocols",
    headers: [["Upgrade", "websocket"]],
  },
  { type: "DATA", data: new Uint8Array([0, 1, 2, 255]) },
  { type: "TRAILERS", trailers: [["grpc-status", "0"], ["grpc-message", "ok"]] },
  { type: "ERROR", code: "local_unreachable", message: "connect 127.0.0.1:3000: refused" },
];

/** A deterministic PRNG so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A ProtocolError (its name says so) carrying `code`. */
const codeIs = (code: string) => (e: unknown) =>
  e instanceof ProtocolError && e.name === "ProtocolError" && e.code === code;

Deno.test("every message type survives an encode/decode round trip", () => {
  for (const m of samples) assertEquals(decode(encode(m)), m);
});

Deno.test("decode rejects unknown types, truncation and trailing bytes with ProtocolError codes", () => {
  const good = encode(samples[0]);
  const unknown = good.slice();
  unknown[0] = 0x7f;
  assertThrows(() => decode(unknown), codeIs("unknown_type"));
  assertThrows(() => decode(good.subarray(0, good.length - 1)), codeIs("truncated"));
  const longer = new Uint8Array(good.length + 1);
  longer.set(good);
  assertThrows(() => decode(longer), codeIs("trailing_bytes"));
});

Deno.test("decode refuses a head announcing more than 512 KB before reading it", () => {
  const frame = new Uint8Array(FRAME_HEADER_BYTES);
  frame[0] = 0x10;
  new DataView(frame.buffer).setUint32(1, MAX_PAYLOAD_BYTES + 1);
  assertThrows(() => decode(frame), codeIs("too_large"));
});

Deno.test("encode refuses more than 8192 headers, CRLF in values, non-token methods, spaces in targets", () => {
  const many = Array.from({ length: 8193 }, (_, i) => [`x-${i}`, "v"] as [string, string]);
  assertThrows(() => encode({ type: "REQUEST_HEAD", ...head, headers: many }), ProtocolError);
  assertThrows(
    () => encode({ type: "REQUEST_HEAD", ...head, headers: [["x", "a\r\nb: c"]] }),
    ProtocolError,
  );
  assertThrows(() => encode({ type: "REQUEST_HEAD", ...head, method: "GET /" }), ProtocolError);
  assertThrows(() => encode({ type: "REQUEST_HEAD", ...head, target: "/a b" }), ProtocolError);
  assertThrows(() => encode({ type: "REQUEST_HEAD", ...head, target: "/a\x7f" }), ProtocolError);
  assertThrows(
    () => encode({ type: "RESPONSE_HEAD", status: 100, statusText: "", headers: [] }),
    ProtocolError,
  );
});

Deno.test("decode rejects invalid UTF-8 in strings", () => {
  const frame = encode({ type: "GOODBYE", reason: "ab" });
  frame[FRAME_HEADER_BYTES + 1] = 0xff;
  assertThrows(() => decode(frame), codeIs("invalid_utf8"));
});

Deno.test("UTF-8 string fields: ASCII, non-ASCII, short and long cross unchanged (both decode paths)", () => {
  for (
    const reason of ["", "ab", "é", "a".repeat(63) + "é", "한글 ".repeat(40), "x".repeat(300), "\u{1f600}"]
  ) {
    const m = decode(encode({ type: "GOODBYE", reason }));
    assertEquals(m, { type: "GOODBYE", reason });
  }
  // A short string whose first bytes are ASCII and whose last byte is not valid UTF-8 is still refused.
  const frame = encode({ type: "GOODBYE", reason: "abcd" });
  frame[FRAME_HEADER_BYTES + 4] = 0xc3;
  assertThrows(() => decode(frame), codeIs("invalid_utf8"));
});

Deno.test("a header value with code units above 0xff (decoded as UTF-8 by a caller) crosses as its UTF-8 bytes", () => {
  const m = decode(
    encode({ type: "RESPONSE_HEAD", status: 200, statusText: "OK", headers: [["X-Name", "a\u00e9\ud55c"]] }),
  );
  const utf8 = new TextEncoder().encode("a\u00e9\ud55c");
  assertEquals(m, {
    type: "RESPONSE_HEAD",
    status: 200,
    statusText: "OK",
    headers: [["X-Name", String.fromCharCode(...utf8)]],
  });
});

Deno.test("fuzz: random bytes only ever throw ProtocolError", () => {
  const rand = rng(42);
  for (let i = 0; i < 20000; i++) {
    const len = Math.floor(rand() * 64);
    const bytes = new Uint8Array(len);
    for (let j = 0; j < len; j++) bytes[j] = Math.floor(rand() * 256);
    // Make the header plausible half the time so payload decoders are exercised too.
    if (len >= 5 && rand() < 0.5) {
      bytes[0] = [0x01, 0x02, 0x03, 0x04, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15][Math.floor(rand() * 10)];
      new DataView(bytes.buffer).setUint32(1, len - 5);
    }
    try {
      decode(bytes);
    } catch (e) {
      assert(e instanceof ProtocolError, String(e));
    }
  }
});

Deno.test("fuzz: mutated valid frames decode to a valid message or throw ProtocolError", () => {
  const rand = rng(7);
  for (let i = 0; i < 20000; i++) {
    const frame = encode(samples[i % samples.length]).slice();
    const flips = 1 + Math.floor(rand() * 3);
    for (let f = 0; f < flips; f++) {
      const at = FRAME_HEADER_BYTES + Math.floor(rand() * (frame.length - FRAME_HEADER_BYTES));
      frame[at] = Math.floor(rand() * 256);
    }
    try {
      const m = decode(frame);
      assertEquals(decode(encode(m)), m);
    } catch (e) {
      assert(e instanceof ProtocolError, String(e));
    }
  }
});

Deno.test("MessageReader reads frames split across chunks and hands over the bytes after them", async () => {
  const a = encode(samples[0]);
  const b = encode(samples[3]);
  const tail = new TextEncoder().encode("raw body bytes");
  const all = new Uint8Array([...a, ...b, ...tail]);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < all.length; i += 3) chunks.push(all.slice(i, i + 3));
  const reader = new MessageReader(ReadableStream.from(chunks));
  assertEquals(await reader.next(), samples[0]);
  assertEquals(await reader.expect("GOODBYE"), samples[3]);
  assertEquals(await new Response(reader.rest()).text(), "raw body bytes");
});

Deno.test("MessageReader: end of stream mid-frame is stream_ended, at a boundary is null", async () => {
  const a = encode(samples[1]);
  const cut = new MessageReader(ReadableStream.from([a.subarray(0, a.length - 2)]));
  const err = await cut.next().then(() => null, (e) => e);
  assert(err instanceof ProtocolError);
  assertEquals(err.code, "stream_ended");
  const clean = new MessageReader(ReadableStream.from([a]));
  assertEquals((await clean.next())?.type, "WELCOME");
  assertEquals(await clean.next(), null);
});
