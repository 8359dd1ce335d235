/**
 * Idle timeout and keep-alive (RFC 9000 §10.1, §10.1.2): the connection ends after `idleTimeoutMs`
 * without a packet from the peer, and sends a PING after `keepAliveMs` of silence (0 disables it).
 */
export class Liveness {
  #lastReceive: number;
  #lastKeepAlive: number;

  constructor(readonly idleTimeoutMs: number, readonly keepAliveMs: number, now: number) {
    this.#lastReceive = now;
    this.#lastKeepAlive = now;
  }

  /** A packet from the peer was accepted. */
  onPacketReceived(now: number): void {
    this.#lastReceive = now;
  }

  /** When the connection dies of silence. */
  get idleDeadline(): number {
    return this.#lastReceive + this.idleTimeoutMs;
  }

  /** When a keep-alive PING is due, if keep-alive is on. */
  get keepAliveDeadline(): number | undefined {
    if (this.keepAliveMs <= 0) return undefined;
    return Math.max(this.#lastReceive, this.#lastKeepAlive) + this.keepAliveMs;
  }

  /** True (once per interval) when a PING should go out now. */
  keepAliveDue(now: number): boolean {
    const k = this.keepAliveDeadline;
    if (k === undefined || now < k) return false;
    this.#lastKeepAlive = now;
    return true;
  }
}
