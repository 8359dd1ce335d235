/** The framer: the one owner of pending control frames, without a connection. */
import { ReceiveWindow } from "../lib/transport/flow_control.ts";
import { decodeFrames } from "../lib/transport/frames/frame.ts";
import { Framer } from "../lib/transport/framer.ts";
import { IGNORED_FATE, type SentFrame } from "../lib/transport/sent_packet.ts";
import { StreamMap } from "../lib/transport/stream_map.ts";
import { BufferWriter } from "../lib/transport/varint.ts";
import { assert, assertEquals } from "./support/transport_assert.ts";

function setup() {
  const connRecv = new ReceiveWindow(1024 * 1024, 4 * 1024 * 1024, 0);
  const host = { streamMap: undefined as unknown as StreamMap, connRecv };
  const framer = new Framer(host);
  host.streamMap = new StreamMap(
    "server",
    100,
    () => {
      throw new Error("no streams in this test");
    },
    () => {},
    () => framer.queueMaxStreams(),
  );
  return { framer, connRecv, streamMap: host.streamMap };
}

/** Writes what the framer owes into one packet-sized buffer; returns the decoded frames and their records. */
function write(framer: Framer, room = 1200) {
  const w = new BufferWriter(new Uint8Array(room));
  const sent: SentFrame[] = [];
  framer.writeControlFrames(w, sent);
  return { frames: decodeFrames(w.bytes.subarray(0, w.pos)), sent };
}

Deno.test("framer: MAX_DATA goes out once, with the window's current limit", () => {
  const { framer, connRecv } = setup();
  assertEquals(framer.hasControlFrames(), false);
  framer.queueMaxData();
  framer.queueMaxData();
  assert(framer.hasControlFrames());
  const { frames, sent } = write(framer);
  assertEquals(frames, [{ type: "max_data", maximumData: connRecv.limit }]);
  assertEquals(sent, [{ kind: "max_data", fate: framer }], "the framer learns its fate");
  assertEquals(framer.hasControlFrames(), false, "written once, nothing left");
});

Deno.test("framer: a lost MAX_DATA is re-sent with the current value, not the old one (RFC 9000 §13.3)", () => {
  const { framer, connRecv } = setup();
  framer.queueMaxData();
  const first = write(framer);
  connRecv.limit += 65536;
  for (const f of first.sent) f.fate.onLost(f);
  assertEquals(write(framer).frames, [{ type: "max_data", maximumData: connRecv.limit }]);
});

Deno.test("framer: a lost MAX_STREAMS is re-sent with the current limit; a lost PING is not re-sent", () => {
  const { framer, streamMap } = setup();
  framer.queueMaxStreams();
  const first = write(framer);
  assertEquals(first.frames, [{ type: "max_streams", maximumStreams: streamMap.advertisedMaxStreams }]);
  streamMap.advertisedMaxStreams += 50;
  framer.onLost({ kind: "ping", fate: IGNORED_FATE });
  assertEquals(framer.hasControlFrames(), false);
  for (const f of first.sent) f.fate.onLost(f);
  assertEquals(write(framer).frames, [{
    type: "max_streams",
    maximumStreams: streamMap.advertisedMaxStreams,
  }]);
});

Deno.test("framer: a pending PING is cleared by any ack-eliciting packet", () => {
  const { framer } = setup();
  framer.queuePing();
  assert(framer.pingPending && framer.hasControlFrames());
  framer.onAckElicitingSent();
  assertEquals(framer.hasControlFrames(), false);
});

Deno.test("framer: control frames wait for a packet with room for them", () => {
  const { framer } = setup();
  framer.queueMaxData();
  assertEquals(write(framer, 10).frames, [], "10 bytes are not enough");
  assert(framer.hasControlFrames(), "still owed");
  assertEquals(write(framer).frames.length, 1);
});
