/**
 * What happens to frames when their packet is acknowledged or lost: frames are retransmitted, not
 * packets (RFC 9000 §13.3), and control frames are re-sent with their current values, not the old ones.
 */
import type { SentFrame } from "./sent_packet.ts";
import type { Stream } from "./stream.ts";
import type { StreamMap } from "./stream_map.ts";

/** The connection state these decisions touch. */
export interface RetransmissionHost {
  readonly streamMap: StreamMap;
  needsMaxData: boolean;
  retransmittedFrames: number;
  wake(stream: Stream): void;
}

/** A frame's packet was acknowledged. */
export function onFrameAcked(host: RetransmissionHost, f: SentFrame): void {
  switch (f.kind) {
    case "stream":
      host.streamMap.streams.get(f.streamId)?.onFrameAcked(f.offset, f.length, f.fin);
      return;
    case "reset_stream": {
      const s = host.streamMap.streams.get(f.streamId);
      if (s === undefined) return;
      s.resetAcked = true;
      s.checkTerminated();
      return;
    }
  }
}

/** Frames are retransmitted, not packets (RFC 9000 §13.3): each lost frame is queued afresh, with current values. */
export function requeueFrames(host: RetransmissionHost, frames: SentFrame[]): void {
  for (const f of frames) {
    switch (f.kind) {
      case "stream": {
        const s = host.streamMap.streams.get(f.streamId);
        if (s === undefined) break;
        s.send.onLost(f.offset, f.length, f.fin);
        host.retransmittedFrames++;
        host.wake(s);
        break;
      }
      case "reset_stream": {
        const s = host.streamMap.streams.get(f.streamId);
        if (s !== undefined && !s.resetAcked) {
          s.needsResetStream = true;
          host.wake(s);
        }
        break;
      }
      case "stop_sending": {
        const s = host.streamMap.streams.get(f.streamId);
        if (s !== undefined && !s.recv.allReceived) {
          s.needsStopSending = true;
          host.wake(s);
        }
        break;
      }
      case "max_stream_data": {
        const s = host.streamMap.streams.get(f.streamId);
        if (s !== undefined && s.recv.finalSize === undefined && !s.discarding) {
          s.needsMaxStreamData = true;
          host.wake(s);
        }
        break;
      }
      case "max_data":
        host.needsMaxData = true;
        break;
      case "max_streams":
        host.streamMap.needsMaxStreams = true;
        break;
      case "ping":
        break;
    }
  }
}
