/**
 * The client's answer to the server's stale-session hint (lib/dtls/stale_hint.ts). The hint is
 * unauthenticated, so it only starts a probe: something ack-eliciting goes out on the session,
 * and only if nothing authenticated comes back within the deadline is the path declared dead.
 * An off-path attacker who forges hints thus costs a PING, never a session.
 */
import type { Clock } from "../log/clock.ts";
import { systemClock } from "../log/clock.ts";
import type { DatagramSession } from "../dtls/session.ts";

export interface PathProbeOptions {
  /** Sends something the peer must answer (a PING on the control stream: the transport ACKs it). */
  nudge(): void;
  /** Called once when a probe went unanswered. */
  onDead(reason: string): void;
  /** Deadline for an answer (e.g. max(1 s, 4 smoothed RTTs)). */
  deadlineMs(): number;
  clock?: Clock;
}

export interface WatchedSession {
  /** The session to build the connection on: the same one, with receives timestamped. */
  session: DatagramSession;
  /** Starts reacting to hints; returns a stop function. */
  arm(o: PathProbeOptions): () => void;
  /** Runs one probe now (also used by tests); resolves true when the path answered. */
  probe(o: PathProbeOptions): Promise<boolean>;
}

/** Wraps a session so hints trigger probes judged by whether any datagram arrives in time. */
export function watchPath(inner: DatagramSession, clock: Clock = systemClock): WatchedSession {
  let lastReceive = clock.now();
  let probing: Promise<boolean> | undefined;
  const onDatagram = (receiver: ((d: Uint8Array) => void) | null) =>
    inner.onDatagram(
      receiver === null ? null : (d) => {
        lastReceive = clock.now();
        receiver(d);
      },
    );
  // Methods are bound once: the transport calls send() for every packet through this proxy.
  const bound = new Map<PropertyKey, unknown>();
  const session = new Proxy(inner, {
    get(target, prop) {
      if (prop === "onDatagram") return onDatagram;
      const v = Reflect.get(target, prop, target);
      if (typeof v !== "function") return v;
      let b = bound.get(prop);
      if (b === undefined) bound.set(prop, b = v.bind(target));
      return b;
    },
  });
  const probe = (o: PathProbeOptions): Promise<boolean> => {
    probing ??= new Promise<boolean>((resolve) => {
      const c = o.clock ?? clock;
      const started = c.now();
      o.nudge();
      c.setTimeout(() => {
        probing = undefined;
        const answered = lastReceive > started;
        if (!answered) {
          o.onDead(`no answer within ${o.deadlineMs()} ms to a path probe after a stale-session hint`);
        }
        resolve(answered);
      }, o.deadlineMs());
    });
    return probing;
  };
  return {
    session,
    probe,
    arm(o) {
      inner.onPathHint?.(() => void probe(o));
      return () => inner.onPathHint?.(null);
    },
  };
}
