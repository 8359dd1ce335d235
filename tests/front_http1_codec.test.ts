/** The HTTP/1.1 codecs alone: strict head parsing, chunked bodies, response heads; fuzzed. */
import { assert, assertEquals, assertThrows } from "./support/assert.ts";
import { type HeaderLine, latin1Bytes, latin1String } from "../lib/protocol/body.ts";
import { seededRandom } from "../lib/testing/seeded_random.ts";
import { HttpError } from "../lib/proxy/http1/errors.ts";
import {
  DEFAULT_HEAD_LIMITS,
  locateHead,
  parseRequestHead,
  type RequestHead,
} from "../lib/proxy/http1/request_head.ts";
import { ChunkedDecoder, chunkHeader, lastChunk } from "../lib/proxy/http1/chunked.ts";
import { responseHead } from "../lib/proxy/http1/response_head.ts";

const L = DEFAULT_HEAD_LIMITS;

/** Parses a whole head the way the connection does. */
function parse(s: string): RequestHead {
  const b = latin1Bytes(s);
  const end = locateHead(b, 0, b.length, 0, L);
  if (end === -1) throw new Error("incomplete head");
  return parseRequestHead(latin1String(b.subarray(0, end)), L);
}

function status(s: string): number {
  try {
    parse(s);
    return 0;
  } catch (e) {
    if (e instanceof HttpError) return e.status;
    throw e;
  }
}

Deno.test("head: raw UTF-8 target, order, case and duplicates kept", () => {
  const target = latin1String(new TextEncoder().encode("/a/한?q=한"));
  const h = parse(`GET ${target} HTTP/1.1\r\nHost: a.test\r\nX-A: 1\r\nx-a: 2\r\nCookie: k=v\r\n\r\n`);
  assertEquals(h.target, target);
  assertEquals(h.headers, [["Host", "a.test"], ["X-A", "1"], ["x-a", "2"], ["Cookie", "k=v"]]);
  assertEquals(h.host, "a.test");
  assertEquals(h.version, "1.1");
  assert(h.keepAlive);
  assertEquals(h.framing, { kind: "none" });
});

Deno.test("head: framing, keep-alive, expect and upgrade", () => {
  assertEquals(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n").framing, {
    kind: "length",
    length: 5,
  });
  assertEquals(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n").framing, {
    kind: "chunked",
  });
  assertEquals(parse("GET / HTTP/1.0\r\n\r\n").keepAlive, false);
  assertEquals(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keepAlive, true);
  assertEquals(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keepAlive, false);
  assert(
    parse("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n").expectContinue,
  );
  assert(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n").upgrade);
  assert(!parse("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n").upgrade);
  assertEquals(parse("GET http://b.test/x HTTP/1.1\r\nHost: a\r\n\r\n").host, "b.test");
});

Deno.test("head: smuggling forms and malformed heads answer the right status", () => {
  const cases: [string, number][] = [
    ["POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400],
    ["POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400],
    ["POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400],
    ["POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400],
    ["POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400],
    ["POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 400],
    ["POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400],
    ["POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501],
    ["POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501],
    ["POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400],
    ["POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 501],
    ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "chunked"\r\n\r\n', 400],
    ["POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nHost: a\r\nX\u0000Y: 1\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nHost: a\r\nX: a\u0000\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", 400],
    ["GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["GET /\u007f HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505],
    ["GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505],
    ["GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\n: x\r\nHost: a\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nNoColon\r\nHost: a\r\n\r\n", 400],
  ];
  for (const [head, want] of cases) assertEquals(status(head), want, JSON.stringify(head));
  // Bare LF anywhere in the head.
  for (
    const head of [
      "GET / HTTP/1.1\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\n\n",
    ]
  ) {
    assertEquals(status(head), 400, JSON.stringify(head));
  }
});

Deno.test("head: limits (64 KB of headers pass, 128 KiB head, long target)", () => {
  const big = Array.from({ length: 64 }, (_, i) => `X-H${i}: ${"v".repeat(1000)}\r\n`).join("");
  assertEquals(parse(`GET / HTTP/1.1\r\nHost: a\r\n${big}\r\n`).headers.length, 65);
  const many = Array.from({ length: 250 }, (_, i) => `Cookie: c${i}=1\r\n`).join("");
  assertEquals(parse(`GET / HTTP/1.1\r\nHost: a\r\n${many}\r\n`).headers.length, 251);
  const huge = latin1Bytes(`GET / HTTP/1.1\r\nHost: a\r\nX: ${"v".repeat(130 * 1024)}`);
  assertThrows(
    () => locateHead(huge, 0, huge.length, 0, L),
    (e) => e instanceof HttpError && e.status === 431,
  );
  const longLine = latin1Bytes(`GET /${"a".repeat(20 * 1024)}`);
  assertThrows(
    () => locateHead(longLine, 0, longLine.length, 0, L),
    (e) => e instanceof HttpError && e.status === 414,
  );
  assertEquals(status(`GET /${"a".repeat(17 * 1024)} HTTP/1.1\r\nHost: a\r\n\r\n`), 414);
});

Deno.test("head: incremental location gives the same end for any split", () => {
  const s = latin1Bytes("GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\nNEXT");
  for (let cut = 1; cut < s.length; cut++) {
    let scanned = 0;
    let end = locateHead(s, 0, cut, scanned, L);
    if (end === -1) {
      scanned = cut;
      end = locateHead(s, 0, s.length, scanned, L);
    }
    assertEquals(end, s.length - 4, `cut ${cut}`);
  }
});

Deno.test("fuzz: random and mutated heads never throw anything but HttpError", () => {
  const rnd = seededRandom(1234);
  const base = "POST /x?y=1 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\nX-A: b\r\n\r\n";
  for (let i = 0; i < 20_000; i++) {
    let bytes: Uint8Array;
    if (i % 2 === 0) {
      bytes = new Uint8Array(Math.floor(rnd() * 200));
      for (let j = 0; j < bytes.length; j++) {
        bytes[j] = rnd() < 0.3 ? [13, 10, 32, 58][Math.floor(rnd() * 4)] : rnd() * 256;
      }
    } else {
      bytes = latin1Bytes(base);
      for (let k = 0; k < 1 + rnd() * 3; k++) bytes[Math.floor(rnd() * bytes.length)] = rnd() * 256;
    }
    try {
      const end = locateHead(bytes, 0, bytes.length, 0, L);
      if (end !== -1) parseRequestHead(latin1String(bytes.subarray(0, end)), L);
    } catch (e) {
      if (!(e instanceof HttpError)) throw e;
    }
  }
});

/** Decodes a chunked body fed in the given pieces. */
function decode(pieces: Uint8Array[]): { body: string; trailers: HeaderLine[] | null; rest: string } {
  let body = "";
  let trailers: HeaderLine[] | null | undefined;
  let rest = "";
  const d = new ChunkedDecoder(
    { maxExtensionBytes: 64, maxTrailerBytes: 1024 },
    (c) => (body += latin1String(c)),
    (t) => {
      trailers = t;
    },
  );
  for (const p of pieces) {
    const used = d.feed(p, 0, p.length);
    if (d.done) rest += latin1String(p.subarray(used));
  }
  if (trailers === undefined) throw new Error("body did not end");
  return { body, trailers, rest };
}

Deno.test("chunked: decodes with extensions and trailers, stops at the body's end", () => {
  const wire = "5;ext=1\r\nhello\r\n6 ; a=b\r\n world\r\n0\r\nX-Sum: 1\r\nX-Sum: 2\r\n\r\nGET";
  const r = decode([latin1Bytes(wire)]);
  assertEquals(r, { body: "hello world", trailers: [["X-Sum", "1"], ["X-Sum", "2"]], rest: "GET" });
  assertEquals(decode([latin1Bytes("0\r\n\r\n")]).trailers, null);
});

Deno.test("chunked: invalid sizes, overflow, bad CRLF and extension floods are 400", () => {
  const bad = [
    "x\r\n",
    "\r\n",
    "-1\r\n",
    "0x5\r\nhello\r\n",
    "5\nhello\r\n",
    "5\r\nhelloX\r\n",
    "5\r\nhello\n",
    "fffffffffffffff\r\n",
    "5 \r\n",
    `5;${"e".repeat(100)}\r\n`,
    "5;a\u0001\r\n",
    "0\r\nX: 1\n\r\n",
    "0\r\n folded\r\n\r\n",
    "0\r\nBad Name: 1\r\n\r\n",
  ];
  for (const wire of bad) {
    assertThrows(
      () => decode([latin1Bytes(wire + "0\r\n\r\n")]),
      (e) => e instanceof HttpError,
      JSON.stringify(wire),
    );
  }
});

Deno.test("fuzz: chunked round trip at every split, random bytes never crash", () => {
  const rnd = seededRandom(99);
  for (let i = 0; i < 300; i++) {
    const parts: Uint8Array[] = [];
    let body = "";
    for (let k = 0; k < rnd() * 5; k++) {
      const data = latin1String(Uint8Array.from({ length: 1 + Math.floor(rnd() * 40) }, () => rnd() * 256));
      body += data;
      parts.push(latin1Bytes(chunkHeader(data.length) + data + "\r\n"));
    }
    const trailers: HeaderLine[] | null = rnd() < 0.5 ? null : [["X-T", String(i)]];
    parts.push(latin1Bytes(lastChunk(trailers)));
    const wire = latin1Bytes(parts.map(latin1String).join(""));
    // Random cuts into 1..4 pieces.
    const cuts = [
      0,
      ...Array.from({ length: 3 }, () => Math.floor(rnd() * wire.length)).sort((a, b) => a - b),
      wire.length,
    ];
    const pieces = cuts.slice(1).map((c, j) => wire.subarray(cuts[j], c)).filter((p) => p.length > 0);
    const r = decode(pieces);
    assertEquals(r.body, body);
    assertEquals(r.trailers, trailers);
  }
  for (let i = 0; i < 20_000; i++) {
    const bytes = Uint8Array.from(
      { length: Math.floor(rnd() * 64) },
      () => (rnd() < 0.4 ? [48, 13, 10, 59, 97][Math.floor(rnd() * 5)] : rnd() * 256),
    );
    const d = new ChunkedDecoder({ maxExtensionBytes: 16, maxTrailerBytes: 64 }, () => {}, () => {});
    try {
      d.feed(bytes, 0, bytes.length);
    } catch (e) {
      if (!(e instanceof HttpError)) throw e;
    }
  }
});

Deno.test("response head: lines exactly as given, framing after, splitting lines dropped", () => {
  const s = responseHead(200, "OK", [["X-A", "1"], ["set-cookie", "a"], ["Set-Cookie", "b"], [
    "X-Bad",
    "a\r\nInjected: 1",
  ]], [
    "Transfer-Encoding: chunked",
  ]);
  assertEquals(
    latin1String(s),
    "HTTP/1.1 200 OK\r\nX-A: 1\r\nset-cookie: a\r\nSet-Cookie: b\r\nTransfer-Encoding: chunked\r\n\r\n",
  );
  // Bytes above 0x7f in a value (a byte string) go out as single bytes; a reason with CR/LF loses them.
  const raw = responseHead(404, "Not\r\n Found", [["X-Name", "caf\u00e9"]], []);
  assertEquals(latin1String(raw), "HTTP/1.1 404 Not Found\r\nX-Name: caf\u00e9\r\n\r\n");
  assertEquals(raw.length, latin1String(raw).length);
});

Deno.test("fuzz: a serialized request head parses back to the same lines", () => {
  const rnd = seededRandom(7);
  const tchar = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const pick = (alphabet: string, n: number) =>
    Array.from({ length: n }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join("");
  for (let i = 0; i < 2000; i++) {
    const target = "/" +
      latin1String(Uint8Array.from({ length: Math.floor(rnd() * 30) }, () => 0x21 + Math.floor(rnd() * 0xde)))
        .replace(/\x7f/g, "a");
    const headers: HeaderLine[] = [["Host", "a.test"]];
    for (let k = 0; k < rnd() * 10; k++) {
      const value = latin1String(
        Uint8Array.from({ length: Math.floor(rnd() * 20) }, () => 0x21 + Math.floor(rnd() * 0xde)),
      ).replace(/\x7f/g, "b");
      headers.push(["X-" + pick(tchar, 1 + Math.floor(rnd() * 10)), value]);
    }
    const wire = `GET ${target} HTTP/1.1\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`;
    const h = parse(wire);
    assertEquals(h.target, target);
    assertEquals(h.headers, headers);
  }
});
