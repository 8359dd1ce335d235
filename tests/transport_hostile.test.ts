/** A misbehaving peer never crashes the receiver: bad packets are dropped or close the connection with a code. */
import { TransportErrorCode } from "../lib/transport/errors.ts";
import type { Frame } from "../lib/transport/frames/frame.ts";
import { seededRandom } from "../lib/testing/seeded_random.ts";
import { encodePacket } from "../lib/transport/packet.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { connectedPair, drive, driveFor } from "./support/transport_sim.ts";

/** Delivers raw bytes to the server as if the client had sent them. */
function inject(pair: ReturnType<typeof connectedPair>, bytes: Uint8Array): void {
  pair.link.b.inbound.receiver?.(bytes);
}

async function expectClose(frames: Frame[], code: number) {
  const pair = connectedPair({ delayMs: 1 });
  await driveFor(pair.clock, 10);
  inject(pair, encodePacket(1_000_000, frames));
  const info = await drive(pair.clock, pair.server.closed);
  assertEquals([info.kind, info.code], ["local", code]);
  const remote = await drive(pair.clock, pair.client.closed);
  assert(remote.kind === "remote" || remote.kind === "session_closed", `client saw ${remote.kind}`);
  if (remote.kind === "remote") assertEquals(remote.code, code);
}

Deno.test("random datagrams never throw out of the receiver and garbage headers are dropped", async () => {
  const pair = connectedPair({ delayMs: 1 });
  const random = seededRandom(99);
  let closedEarly = false;
  pair.server.closed.then(() => (closedEarly = true));
  for (let i = 0; i < 5_000; i++) {
    const bytes = new Uint8Array(1 + Math.floor(random() * 200));
    for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(random() * 256);
    bytes[0] = bytes[0] === 0x41 ? 0x40 : bytes[0]; // never a valid header: all must be dropped silently
    inject(pair, bytes);
  }
  await driveFor(pair.clock, 100);
  assert(!closedEarly, "garbage without our header is dropped, not fatal");
  // With a valid header and random frames, the connection may close with a code, but nothing throws.
  for (let i = 0; i < 2_000 && !closedEarly; i++) {
    const bytes = new Uint8Array(2 + Math.floor(random() * 200));
    for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(random() * 256);
    bytes[0] = 0x41;
    bytes[1] = 0x3f & bytes[1];
    inject(pair, bytes);
  }
  pair.client.abort();
});

Deno.test("an unknown frame type closes with FRAME_ENCODING_ERROR", async () => {
  const pair = connectedPair({ delayMs: 1 });
  await driveFor(pair.clock, 10);
  inject(pair, new Uint8Array([0x41, 0x50, 0x01, 0x1f]));
  const info = await drive(pair.clock, pair.server.closed);
  assertEquals([info.kind, info.code], ["local", TransportErrorCode.FRAME_ENCODING_ERROR]);
});

Deno.test("stream data past the flow-control limit closes with FLOW_CONTROL_ERROR", async () => {
  await expectClose(
    [{ type: "stream", streamId: 0, offset: 10_000_000, data: new Uint8Array(10), fin: false }],
    TransportErrorCode.FLOW_CONTROL_ERROR,
  );
});

Deno.test("an ACK of a packet never sent closes with PROTOCOL_VIOLATION", async () => {
  await expectClose(
    [{ type: "ack", ackDelayUs: 0, ranges: [{ smallest: 0, largest: 999_999 }] }],
    TransportErrorCode.PROTOCOL_VIOLATION,
  );
});

Deno.test("a stream beyond the advertised limit closes with STREAM_LIMIT_ERROR", async () => {
  await expectClose(
    [{ type: "stream", streamId: 4 * 100_000, offset: 0, data: new Uint8Array(1), fin: false }],
    TransportErrorCode.STREAM_LIMIT_ERROR,
  );
});

Deno.test("data past a stream's final size closes with FINAL_SIZE_ERROR", async () => {
  await expectClose(
    [
      { type: "stream", streamId: 0, offset: 0, data: new Uint8Array(5), fin: true },
      { type: "stream", streamId: 0, offset: 5, data: new Uint8Array(5), fin: false },
    ],
    TransportErrorCode.FINAL_SIZE_ERROR,
  );
});
