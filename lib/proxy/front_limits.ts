/** What an unauthenticated connection may hold (issue 11): every front takes these, tests shorten them. */
import { DEFAULT_HEAD_LIMITS, type HeadLimits } from "./http1/request_head.ts";

export interface FrontLimits extends HeadLimits {
  /** TLS handshake must complete within this (ms). */
  handshakeTimeoutMs: number;
  /** A request head must arrive within this from its first byte (ms): trickled heads are cut. */
  headTimeoutMs: number;
  /** An idle keep-alive connection (no request in flight) is closed after this (ms). */
  idleTimeoutMs: number;
  /** Open connections per source address; more are closed at accept. */
  maxConnectionsPerAddress: number;
  /** Chunk extension bytes per chunk line, trailer section bytes. */
  maxExtensionBytes: number;
  maxTrailerBytes: number;
  /** Back-off after a failed accept (EMFILE and friends), ms. */
  acceptBackoffMs: number;
}

export const DEFAULT_FRONT_LIMITS: FrontLimits = {
  ...DEFAULT_HEAD_LIMITS,
  handshakeTimeoutMs: 10_000,
  headTimeoutMs: 15_000,
  idleTimeoutMs: 30_000,
  maxConnectionsPerAddress: 256,
  maxExtensionBytes: 4096,
  maxTrailerBytes: 64 * 1024,
  acceptBackoffMs: 100,
};

/** The defaults with the given overrides. */
export function frontLimits(overrides: Partial<FrontLimits> = {}): FrontLimits {
  return { ...DEFAULT_FRONT_LIMITS, ...overrides };
}
