/** Credit frames (RFC 9000 §19.9–19.11): MAX_DATA, MAX_STREAM_DATA and MAX_STREAMS (bidirectional). */
import { type BufferReader, type BufferWriter, varintLength } from "../varint.ts";

export const MAX_DATA_FRAME_TYPE = 0x10;
export const MAX_STREAM_DATA_FRAME_TYPE = 0x11;
export const MAX_STREAMS_FRAME_TYPE = 0x12;

export interface MaxDataFrame {
  type: "max_data";
  maximumData: number;
}

export interface MaxStreamDataFrame {
  type: "max_stream_data";
  streamId: number;
  maximumStreamData: number;
}

export interface MaxStreamsFrame {
  type: "max_streams";
  maximumStreams: number;
}

/** Encoded size of MAX_DATA. */
export function maxDataFrameLength(f: MaxDataFrame): number {
  return 1 + varintLength(f.maximumData);
}

/** Writes MAX_DATA. */
export function writeMaxDataFrame(w: BufferWriter, f: MaxDataFrame): void {
  w.uint8(MAX_DATA_FRAME_TYPE);
  w.varint(f.maximumData);
}

/** Reads MAX_DATA whose type byte was consumed. */
export function readMaxDataFrame(r: BufferReader): MaxDataFrame {
  return { type: "max_data", maximumData: r.varint() };
}

/** Encoded size of MAX_STREAM_DATA. */
export function maxStreamDataFrameLength(f: MaxStreamDataFrame): number {
  return 1 + varintLength(f.streamId) + varintLength(f.maximumStreamData);
}

/** Writes MAX_STREAM_DATA. */
export function writeMaxStreamDataFrame(w: BufferWriter, f: MaxStreamDataFrame): void {
  w.uint8(MAX_STREAM_DATA_FRAME_TYPE);
  w.varint(f.streamId);
  w.varint(f.maximumStreamData);
}

/** Reads MAX_STREAM_DATA whose type byte was consumed. */
export function readMaxStreamDataFrame(r: BufferReader): MaxStreamDataFrame {
  return { type: "max_stream_data", streamId: r.varint(), maximumStreamData: r.varint() };
}

/** Encoded size of MAX_STREAMS. */
export function maxStreamsFrameLength(f: MaxStreamsFrame): number {
  return 1 + varintLength(f.maximumStreams);
}

/** Writes MAX_STREAMS (bidirectional). */
export function writeMaxStreamsFrame(w: BufferWriter, f: MaxStreamsFrame): void {
  w.uint8(MAX_STREAMS_FRAME_TYPE);
  w.varint(f.maximumStreams);
}

/** Reads MAX_STREAMS whose type byte was consumed. */
export function readMaxStreamsFrame(r: BufferReader): MaxStreamsFrame {
  return { type: "max_streams", maximumStreams: r.varint() };
}
