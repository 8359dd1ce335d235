/**
 * Idle timeout and keep-alive (RFC 9000 §10.1, §10.1.2): the connection ends after `idleTimeoutMs`
 * without a packet from the peer, and sends a PING after `keepAliveMs` of silence (0 disables it).
 *
 * With `quietProbeMs`, a peer that was talking steadily (its last two packets less than that apart) and
 * then falls silent for that long gets one PING early. A sender held back by flow control otherwise sends
 * nothing until the keep-alive: if its path changed (a NAT rebinding), the peer's credit updates go to the
 * old address and the first packet that could tell it so waits for the keep-alive.
 */
export class Liveness {
  #lastReceive: number;
  #prevReceive = -Infinity;
  #lastKeepAlive: number;
  /** A PING went out since the last packet arrived: no early one until the peer is heard again. */
  #pinged = false;

  constructor(
    readonly idleTimeoutMs: number,
    readonly keepAliveMs: number,
    now: number,
    readonly quietProbeMs = 0,
  ) {
    this.#lastReceive = now;
    this.#lastKeepAlive = now;
  }

  /** A packet from the peer was accepted. */
  onPacketReceived(now: number): void {
    this.#prevReceive = this.#lastReceive;
    this.#lastReceive = now;
    this.#pinged = false;
  }

  /** When the connection dies of silence. */
  get idleDeadline(): number {
    return this.#lastReceive + this.idleTimeoutMs;
  }

  /** When a keep-alive PING is due, if keep-alive is on. */
  get keepAliveDeadline(): number | undefined {
    if (this.keepAliveMs <= 0) return undefined;
    const regular = Math.max(this.#lastReceive, this.#lastKeepAlive) + this.keepAliveMs;
    const q = this.quietProbeMs;
    if (q <= 0 || this.#pinged || this.#lastReceive - this.#prevReceive >= q) return regular;
    return Math.min(regular, this.#lastReceive + q);
  }

  /** True (once per interval) when a PING should go out now. */
  keepAliveDue(now: number): boolean {
    const k = this.keepAliveDeadline;
    if (k === undefined || now < k) return false;
    this.#lastKeepAlive = now;
    this.#pinged = true;
    return true;
  }
}
