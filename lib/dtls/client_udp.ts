/**
 * The client's own UDP socket after the takeover: Deno.listenDatagram bound to the very local
 * address and port the handshake used (the server keys the session by it), one reused receive
 * buffer, and sends that never throw (UDP promises nothing anyway). Under Deno it receives ≈ 2.5×
 * more datagrams a second than node:dgram (ARCHITECTURE.md).
 */
import { MAX_PLAINTEXT_LENGTH } from "./record.ts";
import { enlargeReceiveBuffer } from "./udp_buffer.ts";

export interface ClientUdpOptions {
  family: "udp4" | "udp6";
  localPort: number;
  /** The local address the handshake's socket was bound to (default: the wildcard of `family`). */
  localAddress?: string;
  peer: Deno.NetAddr;
  /** Called with a view of the reused receive buffer: valid only during the call. */
  onDatagram: (datagram: Uint8Array) => void;
  /** The socket failed while open (not after close()). */
  onError: (e: unknown) => void;
}

/**
 * The largest DTLS record (RFC 6347 §4.1: plaintext ≤ 2^14, ciphertext ≤ 2^14 + 2048) plus its
 * 13-byte header: a larger datagram cannot be ours. 64 KB per session made the receive buffer the
 * biggest part of an idle client session (issue 13).
 */
const RECEIVE_BUFFER_BYTES = MAX_PLAINTEXT_LENGTH + 2048 + 13;

/** The port is freed a loop turn after the library's close: retry the bind that long, no longer. */
const BIND_ATTEMPTS = 50;
const BIND_RETRY_MS = 2;

export class ClientUdp {
  readonly #conn: Deno.DatagramConn;
  readonly #o: ClientUdpOptions;
  #closing = false;
  #inflight = 0;
  #drained: (() => void) | null = null;
  readonly done: Promise<void>;
  readonly #peerHost: string;

  private constructor(conn: Deno.DatagramConn, o: ClientUdpOptions) {
    this.#conn = conn;
    this.#o = o;
    this.#peerHost = canonical(o.peer.hostname);
    this.done = this.#receiveLoop();
  }

  /** Binds the port once the library has released it (its close frees it a loop turn later). */
  static async bindAfterClose(o: ClientUdpOptions): Promise<ClientUdp> {
    for (let attempt = 1;; attempt++) {
      try {
        return new ClientUdp(ClientUdp.#listen(o), o);
      } catch (e) {
        if (!(e instanceof Deno.errors.AddrInUse) || attempt >= BIND_ATTEMPTS) throw e;
        await new Promise((r) => setTimeout(r, BIND_RETRY_MS));
      }
    }
  }

  static #listen(o: ClientUdpOptions): Deno.DatagramConn {
    // The server keys the session by source address and port: keep both what the handshake used.
    const hostname = o.localAddress ?? (o.family === "udp6" ? "::" : "0.0.0.0");
    const conn = Deno.listenDatagram({ transport: "udp", hostname, port: o.localPort });
    enlargeReceiveBuffer((conn.addr as Deno.NetAddr).port);
    return conn;
  }

  get localPort(): number {
    return (this.#conn.addr as Deno.NetAddr).port;
  }

  /** Hands one datagram to the socket; failures are dropped like a lost datagram. */
  send(datagram: Uint8Array): void {
    if (this.#closing) return;
    this.#inflight++;
    this.#conn.send(datagram, this.#o.peer).then(this.#onSent, this.#onSent);
  }

  readonly #onSent = (): void => {
    if (--this.#inflight === 0 && this.#drained !== null) this.#drained();
  };

  /** Closes after the datagrams already handed over (a close_notify) have left. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    if (this.#inflight > 0) await new Promise<void>((r) => (this.#drained = r));
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    await this.done;
  }

  async #receiveLoop(): Promise<void> {
    const buf = new Uint8Array(RECEIVE_BUFFER_BYTES);
    const peer = this.#o.peer;
    for (;;) {
      let data: Uint8Array;
      let from: Deno.Addr;
      try {
        [data, from] = await this.#conn.receive(buf);
      } catch (e) {
        if (!this.#closing) this.#o.onError(e);
        return;
      }
      const a = from as Deno.NetAddr;
      // Only the server's address may speak to this session (a spoofer needs the keys anyway).
      if (
        a.port !== peer.port || (a.hostname !== peer.hostname && canonical(a.hostname) !== this.#peerHost)
      ) {
        continue;
      }
      this.#o.onDatagram(data);
    }
  }
}

/** One spelling per address, so "::1" and "0:0:0:0:0:0:0:1" compare equal. */
function canonical(hostname: string): string {
  if (!hostname.includes(":")) return hostname;
  try {
    return new URL(`http://[${hostname}]/`).hostname;
  } catch {
    return hostname;
  }
}
