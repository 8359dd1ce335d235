/**
 * What the send loop may send now, worked out in one place (quic-go's send_mode.go): a PTO probe, a
 * packet size probe, anything, or only ACKs and control frames because of pacing, the congestion window
 * or an empty stream queue.
 */

export type SendMode =
  /** RFC 9002 §6.2.4: a probe packet is owed after a PTO; it goes out whatever the window says. */
  | { readonly kind: "pto_probe" }
  /** RFC 8899 §4.1: a padded PING of `size` bytes, larger than what ordinary packets use. */
  | { readonly kind: "pmtu_probe"; readonly size: number }
  /** ACKs, control frames and stream data. */
  | { readonly kind: "any" }
  /** Stream data waits `waitMs` for the pacer (RFC 9002 §7.7); ACKs and control frames may go. */
  | { readonly kind: "pacing_limited"; readonly waitMs: number }
  /** The congestion window is full: ACKs and control frames only. */
  | { readonly kind: "congestion_limited" }
  /** No stream has data queued: ACKs and control frames only. */
  | { readonly kind: "no_stream_data" };

/** The state the decision reads (the connection's recovery, controller, discovery and pacer). */
export interface SendLimits {
  readonly recovery: { readonly bytesInFlight: number };
  readonly cc: { readonly congestionWindow: number };
  readonly pmtu: { probeSize(now: number): number | undefined };
  readonly pacer: { timeUntilSend(now: number, bytes: number): number };
}

const PTO_PROBE: SendMode = { kind: "pto_probe" };
const ANY: SendMode = { kind: "any" };
const CONGESTION_LIMITED: SendMode = { kind: "congestion_limited" };
const NO_STREAM_DATA: SendMode = { kind: "no_stream_data" };

/** The send mode for a packet of `size` bytes at `now`. */
export function sendMode(
  limits: SendLimits,
  now: number,
  size: number,
  probesToSend: number,
  hasStreamData: boolean,
): SendMode {
  if (probesToSend > 0) return PTO_PROBE;
  if (limits.recovery.bytesInFlight >= limits.cc.congestionWindow) return CONGESTION_LIMITED;
  const probeSize = limits.pmtu.probeSize(now);
  if (probeSize !== undefined && probeSize > size) return { kind: "pmtu_probe", size: probeSize };
  if (!hasStreamData) return NO_STREAM_DATA;
  const waitMs = limits.pacer.timeUntilSend(now, size);
  return waitMs > 0 ? { kind: "pacing_limited", waitMs } : ANY;
}
