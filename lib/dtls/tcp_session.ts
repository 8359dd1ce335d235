/**
 * A DatagramSession over an authenticated TLS stream (the TCP carrier): each send is one DATA
 * frame. The carrier is reliable and ordered, so the transport above never sees a loss and its
 * recovery stays idle; datagrams may be as large as a frame allows, so PMTU discovery settles at
 * the first probe.
 */
import type { Buffer } from "node:buffer";
import type { Duplex } from "node:stream";
import {
  type CloseReason,
  DatagramInbox,
  type DatagramSession,
  DatagramTooLargeError,
  type PeerAddress,
  SessionClosedError,
} from "./session.ts";
import { encodeFrame, type Frame, FrameDecoder, FrameType } from "./tcp_frame.ts";
import { MAX_PLAINTEXT_LENGTH } from "./record.ts";

const MAX_EARLY_DATAGRAMS = 64;
/** How long a graceful close waits for the peer's end of the TLS stream before cutting it. */
const CLOSE_GRACE_MS = 2000;

export interface TcpSessionOptions {
  id: string;
  identity: string;
  remoteAddress: PeerAddress;
  /** Frames that arrived with the handshake, before this session existed. */
  early?: Frame[];
  decoder: FrameDecoder;
  maxDatagramSize?: number;
}

/** A DatagramSession whose datagrams travel as DATA frames on one stream socket. */
export class TcpSession implements DatagramSession {
  readonly id: string;
  readonly identity: string;
  readonly remoteAddress: PeerAddress;
  readonly maxDatagramSize: number;
  readonly closed: Promise<CloseReason>;
  /** Which carrier this is, for logs and the admin API. */
  readonly carrier = "tcp" as const;
  #resolveClosed!: (r: CloseReason) => void;
  #reason: CloseReason | undefined;
  readonly #inbox = new DatagramInbox(MAX_EARLY_DATAGRAMS);
  #ending = false;
  readonly #socket: Duplex;
  readonly #decoder: FrameDecoder;

  constructor(socket: Duplex, o: TcpSessionOptions) {
    this.#socket = socket;
    this.#decoder = o.decoder;
    this.id = o.id;
    this.identity = o.identity;
    this.remoteAddress = o.remoteAddress;
    this.maxDatagramSize = Math.min(o.maxDatagramSize ?? MAX_PLAINTEXT_LENGTH, 0xffff);
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    socket.setMaxListeners?.(20);
    socket.on("data", this.#onData);
    socket.on("end", () => {
      this.#finish({ code: "close_notify", message: "peer closed the TLS stream", remote: true });
      socket.end();
    });
    socket.on("error", (e: Error) => {
      this.#finish({ code: "socket_error", message: e.message, remote: true });
    });
    socket.on("close", () => {
      this.#finish({ code: "socket_error", message: "TLS stream closed", remote: true });
    });
    for (const f of o.early ?? []) this.#onFrame(f);
  }

  readonly #onData = (chunk: Buffer): void => {
    let frames: Frame[];
    try {
      frames = this.#decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    } catch (e) {
      this.#fail(`undecodable carrier frame: ${(e as Error).message}`);
      return;
    }
    for (const f of frames) this.#onFrame(f);
  };

  #onFrame(f: Frame): void {
    if (this.#reason !== undefined) return;
    if (f.type !== FrameType.data) {
      this.#fail(`unexpected carrier frame type ${f.type} after the handshake`);
      return;
    }
    this.#inbox.deliver(f.payload);
  }

  send(data: Uint8Array): void {
    if (this.#reason !== undefined || this.#ending) throw new SessionClosedError(this.#reason);
    if (data.length > this.maxDatagramSize) {
      throw new DatagramTooLargeError(data.length, this.maxDatagramSize);
    }
    this.#socket.write(encodeFrame(FrameType.data, data));
  }

  onDatagram(receiver: ((data: Uint8Array) => void) | null): void {
    this.#inbox.set(receiver);
  }

  close(message = "closed locally"): void {
    if (this.#reason !== undefined || this.#ending) return;
    this.#ending = true;
    // end() flushes what is queued (the transport's CONNECTION_CLOSE) and sends TLS close_notify.
    this.#socket.end();
    const cut = setTimeout(() => this.#socket.destroy(), CLOSE_GRACE_MS);
    this.#socket.once("close", () => clearTimeout(cut));
    this.#finish({ code: "closed", message, remote: false });
  }

  #fail(message: string): void {
    this.#finish({ code: "alert", message, remote: true });
    this.#socket.destroy();
  }

  #finish(reason: CloseReason): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    this.#inbox.clear();
    this.#resolveClosed(reason);
  }
}
