/** Varint, frame and packet codecs: round trips, limits, and random bytes that never throw anything untyped. */
import { type Frame } from "../lib/transport/frames/frame.ts";
import { decodeFrames, encodeFrames } from "../lib/transport/frames/frame.ts";
import { decodePacket, encodePacket } from "../lib/transport/packet.ts";
import { seededRandom } from "../lib/testing/seeded_random.ts";
import { BufferReader, BufferWriter, FrameDecodeError, varintLength } from "../lib/transport/varint.ts";
import { assert, assertEquals, assertThrows } from "./support/assert.ts";

Deno.test("varints round-trip at every length boundary", () => {
  const values = [0, 63, 64, 16383, 16384, 1073741823, 1073741824, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER];
  const buf = new Uint8Array(128);
  const w = new BufferWriter(buf);
  for (const v of values) w.varint(v);
  assertEquals(w.pos, values.reduce((n, v) => n + varintLength(v), 0));
  const r = new BufferReader(buf, 0, w.pos);
  for (const v of values) assertEquals(r.varint(), v);
  assertEquals(r.remaining, 0);
});

Deno.test("a varint above 2^53 - 1 or truncated is a FrameDecodeError", () => {
  assertThrows(
    () => new BufferReader(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])).varint(),
    FrameDecodeError,
  );
  assertThrows(() => new BufferReader(new Uint8Array([0x80, 0x01])).varint(), FrameDecodeError);
});

const sample: Frame[] = [
  { type: "ping" },
  {
    type: "ack",
    ackDelayUs: 1000,
    ranges: [{ smallest: 90, largest: 100 }, { smallest: 50, largest: 80 }, { smallest: 0, largest: 10 }],
  },
  { type: "stream", streamId: 4, offset: 0, data: new Uint8Array([1, 2, 3]), fin: false },
  { type: "stream", streamId: 1_000_001, offset: 2 ** 40, data: new Uint8Array(0), fin: true },
  { type: "reset_stream", streamId: 8, errorCode: 77, finalSize: 123456 },
  { type: "stop_sending", streamId: 9, errorCode: 3 },
  { type: "max_data", maximumData: 2 ** 33 },
  { type: "max_stream_data", streamId: 5, maximumStreamData: 1 << 20 },
  { type: "max_streams", maximumStreams: 300 },
  { type: "connection_close", errorCode: 0x0a, frameType: 0x08, reason: "bad frame ✗" },
  { type: "padding", length: 7 },
];

function normalize(frames: Frame[]): unknown {
  return frames.map((f) => (f.type === "stream" ? { ...f, data: Array.from(f.data) } : f));
}

Deno.test("every frame type round-trips, several to a packet", () => {
  const decoded = decodeFrames(encodeFrames(sample));
  assertEquals(normalize(decoded), normalize(sample));
  const packet = decodePacket(encodePacket(12345678, sample));
  assertEquals(packet.packetNumber, 12345678);
  assertEquals(normalize(packet.frames), normalize(sample));
});

Deno.test("a STREAM frame without a length runs to the end of the packet", () => {
  const bytes = new Uint8Array([0x0c | 0x01, 0x04, 0x05, 9, 8, 7]); // OFF + FIN, id 4, offset 5
  const [f] = decodeFrames(bytes);
  assert(f.type === "stream");
  assertEquals([f.streamId, f.offset, Array.from(f.data), f.fin], [4, 5, [9, 8, 7], true]);
});

Deno.test("lengths beyond the packet and unknown frame types are FrameDecodeErrors", () => {
  assertThrows(() => decodeFrames(new Uint8Array([0x0a, 0x00, 0x20, 1, 2])), FrameDecodeError); // STREAM len 32, 2 bytes
  assertThrows(() => decodeFrames(new Uint8Array([0x1f])), FrameDecodeError);
  assertThrows(() => decodeFrames(new Uint8Array([0x02, 5, 0, 0, 9])), FrameDecodeError); // ACK first range > largest
  assertThrows(() => decodeFrames(new Uint8Array([0x02, 5, 0, 1, 0, 9, 0])), FrameDecodeError); // ACK below zero
  assertThrows(() => decodeFrames(new Uint8Array([0x1c, 0, 0, 40, 65])), FrameDecodeError); // reason too long
  assertThrows(() => decodePacket(new Uint8Array([0x99, 0x00, 0x01])), FrameDecodeError); // unknown packet type
});

Deno.test("fuzz: random and mutated bytes decode or throw FrameDecodeError, nothing else", () => {
  const random = seededRandom(1234);
  const valid = encodePacket(77, sample);
  for (let i = 0; i < 20_000; i++) {
    let bytes: Uint8Array;
    if (i % 2 === 0) {
      bytes = new Uint8Array(Math.floor(random() * 64));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(random() * 256);
      if (bytes.length > 0 && i % 4 === 0) bytes[0] = 0x41;
    } else {
      bytes = valid.slice(0, 1 + Math.floor(random() * valid.length));
      for (let k = 0; k < 3; k++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
    }
    try {
      decodePacket(bytes);
    } catch (e) {
      assert(e instanceof FrameDecodeError, `unexpected ${(e as Error).name}: ${(e as Error).message}`);
    }
  }
});
