/**
 * The one owner of frames owed to the peer (quic-go's framer.go): MAX_DATA, MAX_STREAMS, PING and each
 * stream's RESET_STREAM, STOP_SENDING and MAX_STREAM_DATA are queued here, and so are the streams with
 * data to send, taken in round robin; the packer writes all of them from here. Each frame written carries its owner as its fate: MAX_DATA and MAX_STREAMS come back here when
 * lost and are re-sent with the current value, not the old one (RFC 9000 §13.3); a stream's frames go to
 * the stream.
 */
import type { ReceiveWindow, SendCredit } from "./flow_control.ts";
import { writeMaxDataFrame, writeMaxStreamDataFrame, writeMaxStreamsFrame } from "./frames/flow_control.ts";
import { writeResetStreamFrame } from "./frames/reset_stream.ts";
import { writeStopSendingFrame } from "./frames/stop_sending.ts";
import { RoundRobinScheduler } from "./scheduler.ts";
import type { FrameFate, SentFrame } from "./sent_packet.ts";
import type { Stream } from "./stream.ts";
import type { StreamMap } from "./stream_map.ts";
import type { BufferWriter } from "./varint.ts";

/** Generous upper bound of any one control frame (type + three 8-byte varints). */
const MAX_CONTROL_FRAME = 25;
/** Below this much room a STREAM frame is not worth starting. */
const MIN_STREAM_FRAME_ROOM = 16;

/** A stream's control frames, as bits of what it owes. */
export const enum StreamControl {
  ResetStream = 1,
  StopSending = 2,
  MaxStreamData = 4,
}

/** Where the framer reads current values when it writes a frame. */
export interface FramerHost {
  readonly streamMap: StreamMap;
  readonly connRecv: ReceiveWindow;
  readonly connSend: SendCredit;
}

export class Framer implements FrameFate {
  #maxData = false;
  #maxStreams = false;
  #ping = false;
  /** Streams owing control frames, in the order they first asked. */
  readonly #streams = new Map<Stream, number>();
  /** Streams with data to send; one STREAM frame each per turn. */
  readonly #turns = new RoundRobinScheduler<Stream>();
  /** Streams with data held back only by the connection's send credit (RFC 9000 §4.1). */
  #connBlocked: Stream[] = [];

  constructor(readonly host: FramerHost) {}

  /** RFC 9000 §4.2: the connection receive window moved. */
  queueMaxData(): void {
    this.#maxData = true;
  }

  /** RFC 9000 §4.6: the limit on peer-initiated streams was raised. */
  queueMaxStreams(): void {
    this.#maxStreams = true;
  }

  get maxStreamsPending(): boolean {
    return this.#maxStreams;
  }

  /** The next packet is made ack-eliciting (keep-alive). */
  queuePing(): void {
    this.#ping = true;
  }

  get pingPending(): boolean {
    return this.#ping;
  }

  /** An ack-eliciting frame went out, so a pending PING is no longer needed. */
  onAckElicitingSent(): void {
    this.#ping = false;
  }

  queueStreamControl(stream: Stream, frame: StreamControl): void {
    this.#streams.set(stream, (this.#streams.get(stream) ?? 0) | frame);
  }

  /**
   * The stream is finished. A RESET_STREAM or STOP_SENDING it still owes goes out (true: a flush is
   * needed); a MAX_STREAM_DATA no longer matters.
   */
  onStreamTerminated(stream: Stream): boolean {
    const owed = this.#streams.get(stream) ?? 0;
    if ((owed & (StreamControl.ResetStream | StreamControl.StopSending)) !== 0) return true;
    this.#streams.delete(stream);
    return false;
  }

  hasControlFrames(): boolean {
    return this.#maxData || this.#ping || this.#maxStreams || this.#streams.size > 0;
  }

  /** Writes what is owed and fits, with current values, recording each frame in `frames`. */
  writeControlFrames(w: BufferWriter, frames: SentFrame[]): void {
    const h = this.host;
    if (this.#maxData && w.remaining >= MAX_CONTROL_FRAME) {
      writeMaxDataFrame(w, { type: "max_data", maximumData: h.connRecv.limit });
      frames.push({ kind: "max_data", fate: this });
      this.#maxData = false;
    }
    if (this.#maxStreams && w.remaining >= MAX_CONTROL_FRAME) {
      writeMaxStreamsFrame(w, { type: "max_streams", maximumStreams: h.streamMap.advertisedMaxStreams });
      frames.push({ kind: "max_streams", fate: this });
      this.#maxStreams = false;
    }
    for (const [s, owed] of this.#streams) {
      if (w.remaining < 3 * MAX_CONTROL_FRAME) return;
      this.#streams.delete(s);
      if (owed & StreamControl.ResetStream) {
        writeResetStreamFrame(w, {
          type: "reset_stream",
          streamId: s.id,
          errorCode: s.send.resetCode ?? 0,
          finalSize: s.send.sentOffset,
        });
        frames.push({ kind: "reset_stream", streamId: s.id, fate: s });
      }
      if (owed & StreamControl.StopSending) {
        writeStopSendingFrame(w, { type: "stop_sending", streamId: s.id, errorCode: s.stopSendingCode ?? 0 });
        frames.push({ kind: "stop_sending", streamId: s.id, fate: s });
      }
      if (owed & StreamControl.MaxStreamData) {
        writeMaxStreamDataFrame(w, {
          type: "max_stream_data",
          streamId: s.id,
          maximumStreamData: s.recv.window.limit,
        });
        frames.push({ kind: "max_stream_data", streamId: s.id, fate: s });
      }
    }
  }

  /** The stream has data (or a FIN) to send. */
  scheduleStream(stream: Stream): void {
    this.#turns.push(stream);
  }

  /** Streams waiting for their turn to send. */
  get streamsWaiting(): number {
    return this.#turns.size;
  }

  /** The peer raised the connection's send credit: streams held back by it take turns again. */
  onConnectionCreditRaised(): void {
    const blocked = this.#connBlocked;
    this.#connBlocked = [];
    for (const s of blocked) this.#turns.push(s);
  }

  /** Round robin: each stream writes one frame per turn; one with more to send goes to the back. */
  writeStreamFrames(w: BufferWriter, frames: SentFrame[]): void {
    const credit = this.host.connSend;
    while (w.remaining >= MIN_STREAM_FRAME_ROOM) {
      const s = this.#turns.pop();
      if (s === undefined) return;
      const connAvailable = credit.available;
      if (!s.send.hasData(connAvailable)) {
        if (s.send.blockedOnConnection(connAvailable)) this.#connBlocked.push(s);
        continue;
      }
      const meta = s.send.writeFrame(w, s.id, w.remaining, connAvailable);
      if (meta === undefined) {
        this.#turns.pushFront(s);
        return;
      }
      credit.used += meta.newBytes;
      frames.push({
        kind: "stream",
        streamId: s.id,
        offset: meta.offset,
        length: meta.length,
        fin: meta.fin,
        fate: s,
      });
      if (s.send.hasData(credit.available)) this.#turns.push(s);
      else if (s.send.blockedOnConnection(credit.available)) this.#connBlocked.push(s);
    }
  }

  /** FrameFate of MAX_DATA and MAX_STREAMS: nothing to do once acknowledged. */
  onAcked(_f: SentFrame): void {}

  /** FrameFate of MAX_DATA and MAX_STREAMS: lost, they are owed again and re-sent with current values. */
  onLost(f: SentFrame): void {
    if (f.kind === "max_data") this.#maxData = true;
    else if (f.kind === "max_streams") this.#maxStreams = true;
  }
}
