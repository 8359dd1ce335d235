/**
 * Framed messages on a byte stream: read them one at a time, then hand the bytes that follow
 * to whoever consumes the raw body, with backpressure intact (nothing is read ahead).
 */
import { decodeFrameHeader, decodePayload, encode } from "./codec.ts";
import { ProtocolError } from "./errors.ts";
import { FRAME_HEADER_BYTES, type Message, type TunnelErrorCode } from "./messages.ts";

const EMPTY = new Uint8Array(0);

/** Reads framed messages from a readable, then exposes the remainder as a stream. */
export class MessageReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #pending: Uint8Array = EMPTY;
  #ended = false;
  #released = false;

  constructor(readable: ReadableStream<Uint8Array>) {
    this.#reader = readable.getReader();
  }

  /** Pulls chunks until `n` bytes are buffered; false if the stream ended first. */
  async #fill(n: number): Promise<boolean> {
    while (this.#pending.length < n) {
      if (this.#ended) return false;
      const { done, value } = await this.#reader.read();
      if (done) {
        this.#ended = true;
        return false;
      }
      if (value.length === 0) continue;
      if (this.#pending.length === 0) {
        this.#pending = value;
      } else {
        const joined = new Uint8Array(this.#pending.length + value.length);
        joined.set(this.#pending);
        joined.set(value, this.#pending.length);
        this.#pending = joined;
      }
    }
    return true;
  }

  #take(n: number): Uint8Array {
    const out = this.#pending.subarray(0, n);
    this.#pending = this.#pending.subarray(n);
    return out;
  }

  /**
   * Reads the next framed message; null when the stream ended cleanly between messages.
   * Errors of the underlying stream (a reset) propagate as they are.
   */
  async next(): Promise<Message | null> {
    if (this.#released) throw new Error("MessageReader: rest() was already taken");
    if (!await this.#fill(1)) return null;
    if (!await this.#fill(FRAME_HEADER_BYTES)) {
      throw new ProtocolError("stream_ended", "stream ended inside a frame header");
    }
    const { type, length } = decodeFrameHeader(this.#pending);
    if (!await this.#fill(FRAME_HEADER_BYTES + length)) {
      throw new ProtocolError("stream_ended", `stream ended inside a ${type} frame`);
    }
    this.#take(FRAME_HEADER_BYTES);
    return decodePayload(type, this.#take(length));
  }

  /** Reads one message that must be of one of `types`. */
  async expect<T extends Message["type"]>(...types: T[]): Promise<Extract<Message, { type: T }>> {
    const m = await this.next();
    if (m === null) {
      throw new ProtocolError("stream_ended", `stream ended before ${types.join(" or ")}`);
    }
    if (!(types as string[]).includes(m.type)) {
      throw new ProtocolError("unexpected_type", `expected ${types.join(" or ")}, got ${m.type}`);
    }
    return m as Extract<Message, { type: T }>;
  }

  /**
   * The bytes after the last message read, pulled on demand. `onEnd` runs when the source ends
   * cleanly; cancelling the result cancels the source and then calls `onCancel` (e.g. to reset
   * the transport stream).
   */
  rest(hooks: { onEnd?(): void; onCancel?(reason: unknown): void } = {}): ReadableStream<Uint8Array> {
    this.#released = true;
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (this.#pending.length > 0) {
          controller.enqueue(this.#take(this.#pending.length));
          return;
        }
        if (this.#ended) {
          controller.close();
          hooks.onEnd?.();
          return;
        }
        const { done, value } = await this.#reader.read();
        if (done) {
          this.#ended = true;
          controller.close();
          hooks.onEnd?.();
        } else {
          controller.enqueue(value);
        }
      },
      cancel: async (reason) => {
        await this.#reader.cancel(reason).catch(() => {});
        hooks.onCancel?.(reason);
      },
    }, { highWaterMark: 0 });
  }

  /** Cancels the underlying stream (nothing more will be read). */
  cancel(reason?: unknown): Promise<void> {
    return this.#reader.cancel(reason).catch(() => {});
  }
}

/** Answers a stream with an ERROR message and finishes it; best effort, since the peer may be gone. */
export async function sendErrorAndFinish(
  writable: WritableStream<Uint8Array>,
  code: TunnelErrorCode,
  message: string,
): Promise<void> {
  const writer = writable.getWriter();
  try {
    await writer.write(encode({ type: "ERROR", code, message: message.slice(0, 4000) }));
    await writer.close();
  } catch {
    // The peer is gone; nothing left to tell.
  }
}
