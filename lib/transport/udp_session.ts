/**
 * A plain, unencrypted DatagramSession over one UDP socket and one peer: for benchmarks and tests
 * that measure the transport without DTLS. Needs --unstable-net (Deno.listenDatagram).
 */
import {
  type CloseReason,
  DatagramTooLargeError,
  type PeerAddress,
  SessionClosedError,
} from "../dtls/session.ts";
import type { DatagramSession } from "./datagram_session.ts";

export interface UdpSessionOptions {
  /** Local address to bind (port 0 picks one). */
  hostname: string;
  port: number;
  /** The peer; when absent, the first datagram's sender becomes the peer. */
  remote?: PeerAddress;
  maxDatagramSize?: number;
}

let nextId = 1;

export class UdpSession implements DatagramSession {
  readonly id = `udp${nextId++}`;
  readonly identity = "udp";
  readonly maxDatagramSize: number;
  readonly closed: Promise<CloseReason>;
  readonly localAddress: PeerAddress;
  #conn: Deno.DatagramConn;
  #remote: Deno.NetAddr | undefined;
  #receiver: ((data: Uint8Array) => void) | null = null;
  #reason: CloseReason | undefined;
  #resolveClosed!: (r: CloseReason) => void;
  #onPeer: (() => void) | undefined;
  /** Resolves when the peer is known (immediately for a client). */
  readonly connected: Promise<void>;

  constructor(options: UdpSessionOptions) {
    this.#conn = Deno.listenDatagram({ transport: "udp", hostname: options.hostname, port: options.port });
    const local = this.#conn.addr as Deno.NetAddr;
    this.localAddress = { hostname: local.hostname, port: local.port };
    this.maxDatagramSize = options.maxDatagramSize ?? 16384;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    if (options.remote) {
      this.#remote = { transport: "udp", hostname: options.remote.hostname, port: options.remote.port };
    }
    this.connected = this.#remote ? Promise.resolve() : new Promise((resolve) => (this.#onPeer = resolve));
    this.#receiveLoop();
  }

  get remoteAddress(): PeerAddress {
    return { hostname: this.#remote?.hostname ?? "", port: this.#remote?.port ?? 0 };
  }

  async #receiveLoop(): Promise<void> {
    try {
      for (;;) {
        const [data, addr] = await this.#conn.receive();
        if (this.#reason !== undefined) return;
        if (this.#remote === undefined) {
          this.#remote = addr as Deno.NetAddr;
          this.#onPeer?.();
        }
        this.#receiver?.(data);
      }
    } catch (e) {
      this.#end({ code: "socket_error", message: String(e), remote: false });
    }
  }

  send(data: Uint8Array): void {
    if (this.#reason !== undefined) throw new SessionClosedError(this.#reason);
    if (data.length > this.maxDatagramSize) {
      throw new DatagramTooLargeError(data.length, this.maxDatagramSize);
    }
    if (this.#remote === undefined) return;
    // Not awaited: UDP may drop anyway, and the transport recovers.
    this.#conn.send(data, this.#remote).catch(() => {});
  }

  onDatagram(receiver: ((data: Uint8Array) => void) | null): void {
    this.#receiver = receiver;
  }

  close(message = "closed"): void {
    this.#end({ code: "closed", message, remote: false });
  }

  #end(reason: CloseReason): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    this.#receiver = null;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    this.#resolveClosed(reason);
  }
}
