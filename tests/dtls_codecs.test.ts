import { assert, assertEquals, assertFalse, assertThrows } from "./support/assert.ts";
import {
  decodeRecords,
  encodeRecord,
  MAX_SEQUENCE,
  newRecordHeader,
  readRecordHeader,
  readUint48,
  writeUint48,
} from "../lib/dtls/record.ts";
import {
  type ClientHello,
  decodeClientHello,
  decodeHandshakeFragments,
  decodeHelloVerifyRequest,
  decodePskIdentity,
  decodeServerHello,
  encodeClientHello,
  encodeHandshakeFragment,
  encodeHelloVerifyRequest,
  encodePskIdentity,
  encodeServerHello,
  fragmentHandshakeMessage,
} from "../lib/dtls/messages.ts";
import { DtlsDecodeError } from "../lib/dtls/errors.ts";
import { ReplayWindow } from "../lib/dtls/replay_window.ts";
import { keyBlock, prf, pskPremasterSecret } from "../lib/dtls/prf.ts";
import { RecordOpener, RecordSealer, SUITES } from "../lib/dtls/cipher.ts";
import { CookieJar } from "../lib/dtls/cookie.ts";
import { HandshakeReassembler } from "../lib/dtls/reassembly.ts";
import { seededRandom } from "./support/dtls_relay.ts";
import { hex } from "./support/dtls_peer.ts";

function unhex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g) ?? [], (b) => parseInt(b, 16));
}

const hello: ClientHello = {
  clientVersion: 0xfefd,
  random: Uint8Array.from({ length: 32 }, (_, i) => i),
  sessionId: new Uint8Array(0),
  cookie: Uint8Array.from([9, 8, 7]),
  cipherSuites: [0x00a8, 0xc0a8, 0x00ff],
  compressionMethods: Uint8Array.from([0]),
  extensions: [{ type: 23, data: new Uint8Array(0) }, { type: 0xff01, data: Uint8Array.from([0]) }],
};

Deno.test("a record round-trips through encode and decode, several per datagram", () => {
  const a = encodeRecord({
    type: 22,
    version: 0xfefd,
    epoch: 0,
    sequence: 5,
    length: 3,
    fragment: Uint8Array.of(1, 2, 3),
  });
  const b = encodeRecord({
    type: 23,
    version: 0xfefd,
    epoch: 1,
    sequence: MAX_SEQUENCE,
    length: 0,
    fragment: new Uint8Array(0),
  });
  const datagram = new Uint8Array([...a, ...b]);
  const records = decodeRecords(datagram);
  assertEquals(records.length, 2);
  assertEquals([records[0].type, records[0].epoch, records[0].sequence], [22, 0, 5]);
  assertEquals(Array.from(records[0].fragment), [1, 2, 3]);
  assertEquals([records[1].type, records[1].epoch, records[1].sequence, records[1].length], [
    23,
    1,
    MAX_SEQUENCE,
    0,
  ]);
});

Deno.test("48-bit sequence numbers are exact across the 32-bit boundary", () => {
  const buf = new Uint8Array(6);
  for (const v of [0, 1, 0xffff_ffff, 0x1_0000_0000, 0x1234_5678_9abc, MAX_SEQUENCE]) {
    writeUint48(buf, 0, v);
    assertEquals(readUint48(buf, 0), v);
  }
});

Deno.test("a record whose length runs past the datagram is a DtlsDecodeError", () => {
  const r = encodeRecord({
    type: 23,
    version: 0xfefd,
    epoch: 1,
    sequence: 1,
    length: 4,
    fragment: new Uint8Array(4),
  });
  assertThrows(() => readRecordHeader(r.subarray(0, r.length - 1), 0, newRecordHeader()), DtlsDecodeError);
  assertThrows(() => readRecordHeader(r.subarray(0, 12), 0, newRecordHeader()), DtlsDecodeError);
});

Deno.test("ClientHello, ServerHello, HelloVerifyRequest and PSK identity round-trip", () => {
  const ch = decodeClientHello(encodeClientHello(hello));
  assertEquals(ch.cipherSuites, hello.cipherSuites);
  assertEquals(hex(ch.random), hex(hello.random));
  assertEquals(hex(ch.cookie), "090807");
  assertEquals(ch.extensions.map((e) => e.type), [23, 0xff01]);
  const sh = {
    serverVersion: 0xfefd,
    random: new Uint8Array(32).fill(3),
    sessionId: new Uint8Array(0),
    cipherSuite: 0x00a8,
    compressionMethod: 0,
    extensions: [{ type: 23, data: new Uint8Array(0) }],
  };
  const sh2 = decodeServerHello(encodeServerHello(sh));
  assertEquals(sh2.cipherSuite, 0x00a8);
  assertEquals(sh2.extensions.length, 1);
  const hvr = decodeHelloVerifyRequest(
    encodeHelloVerifyRequest({ serverVersion: 0xfeff, cookie: new Uint8Array(32) }),
  );
  assertEquals(hvr.cookie.length, 32);
  const id = new TextEncoder().encode("a.example.com");
  assertEquals(new TextDecoder().decode(decodePskIdentity(encodePskIdentity(id), "x")), "a.example.com");
});

Deno.test("handshake fragments reassemble out of order, with overlap and duplicates", () => {
  const body = Uint8Array.from({ length: 3000 }, (_, i) => i & 0xff);
  const frags = fragmentHandshakeMessage(16, 2, body, 700).flatMap((f) => decodeHandshakeFragments(f));
  assertEquals(frags.length, 5);
  const r = new HandshakeReassembler(2);
  const order = [3, 0, 4, 0, 2];
  for (const i of order) assertEquals(r.add(frags[i]).length, 0);
  // an overlapping fragment covering the rest
  const overlap = { ...frags[1], fragmentOffset: 600, body: body.subarray(600, 1500) };
  const done = r.add(overlap);
  assertEquals(done.length, 1);
  assertEquals(done[0].messageSeq, 2);
  assertEquals(hex(done[0].body), hex(body));
  assertEquals(r.nextSeq, 3);
  assertEquals(r.add(frags[0]).length, 0, "a fragment of a released message is ignored");
});

Deno.test("the reassembler refuses oversized messages", () => {
  const r = new HandshakeReassembler(0, 1000);
  const f = decodeHandshakeFragments(encodeHandshakeFragment({
    msgType: 1,
    length: 5000,
    messageSeq: 0,
    fragmentOffset: 0,
    body: new Uint8Array(10),
  }))[0];
  assertThrows(() => r.add(f), DtlsDecodeError);
});

Deno.test("fuzz: random and mutated bytes never crash the decoders; only DtlsDecodeError", () => {
  const rnd = seededRandom(42);
  const seedMessages = [
    encodeClientHello(hello),
    encodeHandshakeFragment({
      msgType: 1,
      length: 20,
      messageSeq: 1,
      fragmentOffset: 0,
      body: new Uint8Array(20),
    }),
  ];
  let decoded = 0;
  for (let i = 0; i < 20_000; i++) {
    let input: Uint8Array;
    if (i % 2 === 0) {
      input = Uint8Array.from({ length: Math.floor(rnd() * 200) }, () => Math.floor(rnd() * 256));
    } else {
      input = seedMessages[i % seedMessages.length].slice();
      for (let k = 0; k < 3; k++) input[Math.floor(rnd() * input.length)] = Math.floor(rnd() * 256);
      input = input.subarray(0, Math.floor(rnd() * (input.length + 1)));
    }
    for (
      const decode of [
        decodeRecords,
        decodeClientHello,
        decodeHandshakeFragments,
        decodeServerHello,
        decodeHelloVerifyRequest,
        (b: Uint8Array) => decodePskIdentity(b, "fuzz"),
      ]
    ) {
      try {
        decode(input);
        decoded++;
      } catch (e) {
        assert(e instanceof DtlsDecodeError, `unexpected ${(e as Error).name}: ${(e as Error).message}`);
      }
    }
  }
  assert(decoded > 0, "some inputs decode");
});

Deno.test("replay window: accepts once, rejects duplicates and records older than the window", () => {
  const w = new ReplayWindow(64);
  for (const s of [5, 3, 10, 4]) {
    assert(w.mayAccept(s));
    w.accept(s);
  }
  for (const s of [5, 3, 10, 4]) assertFalse(w.mayAccept(s), `duplicate ${s}`);
  assert(w.mayAccept(6) && w.mayAccept(0) && w.mayAccept(11));
  w.accept(100);
  assertFalse(w.mayAccept(36), "older than the window");
  assert(w.mayAccept(37), "oldest slot in the window, unseen");
  assert(w.mayAccept(99), "slot reused after sliding is cleared");
  w.accept(0x1_0000_0005);
  assertFalse(w.mayAccept(100));
  assert(w.mayAccept(0x1_0000_0004));
  assertFalse(w.mayAccept(0x1_0000_0005));
});

Deno.test("PRF: TLS 1.2 P_SHA256 test vector", () => {
  const out = prf(
    unhex("9bbe436ba940f017b17652849a71db35"),
    "test label",
    unhex("a0ba9f936cda311827a6f796ffd5198c"),
    100,
  );
  assertEquals(
    hex(out),
    "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66",
  );
});

Deno.test("PSK premaster secret is N zeros and the key, each with a 16-bit length (RFC 4279 §2)", () => {
  assertEquals(hex(pskPremasterSecret(Uint8Array.of(0xaa, 0xbb))), "00020000" + "0002aabb");
});

for (const suiteId of [0x00a8]) {
  Deno.test(`AEAD ${SUITES[suiteId].name}: seal/open round trip; tampering and wrong keys fail`, () => {
    const kb = keyBlock(new Uint8Array(48).fill(1), new Uint8Array(32).fill(2), new Uint8Array(32).fill(3));
    const sealer = new RecordSealer(SUITES[suiteId], kb.clientWriteKey, kb.clientWriteIv);
    const opener = new RecordOpener(SUITES[suiteId], kb.clientWriteKey, kb.clientWriteIv);
    const wrong = new RecordOpener(SUITES[suiteId], kb.serverWriteKey, kb.serverWriteIv);
    for (const size of [0, 1, 100, 16384]) {
      const pt = Uint8Array.from({ length: size }, (_, i) => (i * 13) & 0xff);
      const rec = sealer.seal({ type: 23, version: 0xfefd, epoch: 1, sequence: 7 + size, length: 0 }, pt);
      const [r] = decodeRecords(rec);
      assertEquals(hex(opener.open(r, r.fragment) ?? Uint8Array.of(1)), hex(pt));
      assertEquals(wrong.open(r, r.fragment), null);
      assertEquals(
        opener.open({ ...r, sequence: r.sequence + 1 }, r.fragment),
        null,
        "sequence is authenticated",
      );
      const tampered = r.fragment.slice();
      tampered[tampered.length - 1] ^= 1;
      assertEquals(opener.open(r, tampered), null);
    }
  });
}

Deno.test("cookies verify for the same peer and hello, survive one rotation, not two", () => {
  let now = 0;
  const jar = new CookieJar({ now: () => now, rotateMs: 1000 });
  const cookie = jar.issue("1.2.3.4|5", hello);
  assert(jar.verify("1.2.3.4|5", { ...hello, cookie }));
  assertFalse(jar.verify("1.2.3.4|6", { ...hello, cookie }), "other port");
  assertFalse(jar.verify("1.2.3.4|5", { ...hello, cookie, random: new Uint8Array(32) }), "other random");
  now = 1500;
  assert(jar.verify("1.2.3.4|5", { ...hello, cookie }), "previous secret still accepted");
  now = 2600;
  assertFalse(jar.verify("1.2.3.4|5", { ...hello, cookie }), "two rotations later");
});
