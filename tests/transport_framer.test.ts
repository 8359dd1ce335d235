/** The framer: the one owner of pending control frames, without a connection. */
import { ReceiveWindow, SendCredit } from "../lib/transport/flow_control.ts";
import { decodeFrames } from "../lib/transport/frames/frame.ts";
import { Framer } from "../lib/transport/framer.ts";
import { IGNORED_FATE, type SentFrame } from "../lib/transport/sent_packet.ts";
import { SendStream } from "../lib/transport/send_stream.ts";
import type { Stream } from "../lib/transport/stream.ts";
import { StreamMap } from "../lib/transport/stream_map.ts";
import { BufferWriter } from "../lib/transport/varint.ts";
import { assert, assertEquals } from "./support/assert.ts";

function setup(connCredit = 1024 * 1024) {
  const connRecv = new ReceiveWindow(1024 * 1024, 4 * 1024 * 1024, 0);
  const connSend = new SendCredit(connCredit);
  const host = { streamMap: undefined as unknown as StreamMap, connRecv, connSend };
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
  return { framer, connRecv, connSend, streamMap: host.streamMap };
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

/** The part of a Stream the round robin uses: its id, its send half and the queued flag. */
function sendingStream(id: number, bytes: number): Stream {
  const send = new SendStream(1024 * 1024);
  send.push(new Uint8Array(bytes).fill(id));
  return { id, send, scheduled: false } as unknown as Stream;
}

function streamFrames(framer: Framer, room: number) {
  const w = new BufferWriter(new Uint8Array(room));
  const sent: SentFrame[] = [];
  framer.writeStreamFrames(w, sent);
  return sent.map((f) => f.kind === "stream" ? [f.streamId, f.length] : [f.kind, 0]);
}

Deno.test("framer: streams take turns, one STREAM frame each, so a bulk stream cannot starve a small one", () => {
  const { framer } = setup();
  const bulk = sendingStream(0, 10_000);
  const small = sendingStream(4, 100);
  framer.scheduleStream(bulk);
  framer.scheduleStream(small);
  framer.scheduleStream(bulk); // already queued: no second turn
  assertEquals(framer.streamsWaiting, 2);
  const first = streamFrames(framer, 1200);
  assertEquals(first.map(([id]) => id), [0], "the bulk stream's turn fills the first packet");
  const second = streamFrames(framer, 1200);
  assertEquals(second.map(([id]) => id), [4, 0], "then the small stream goes first, whole, and bulk again");
  assertEquals(second[0][1], 100);
  assertEquals(framer.streamsWaiting, 1, "only the bulk stream has more");
  let sent = Number(first[0][1]) + Number(second[1][1]);
  while (framer.streamsWaiting > 0) sent += streamFrames(framer, 1200).reduce((n, [, l]) => n + Number(l), 0);
  assertEquals(sent, 10_000);
});

Deno.test("framer: a stream held back by the connection's credit waits until MAX_DATA raises it (RFC 9000 §4.1)", () => {
  const { framer, connSend } = setup(500);
  const s = sendingStream(0, 2000);
  framer.scheduleStream(s);
  assertEquals(streamFrames(framer, 1200), [[0, 500]], "as much as the credit allows");
  assertEquals(framer.streamsWaiting, 0, "blocked: not taking turns");
  assertEquals(streamFrames(framer, 1200), []);
  connSend.update(5000);
  framer.onConnectionCreditRaised();
  assertEquals(framer.streamsWaiting, 1);
  const rest = streamFrames(framer, 1200).concat(streamFrames(framer, 1200));
  assertEquals(rest.reduce((n, [, l]) => n + Number(l), 0), 1500);
});
