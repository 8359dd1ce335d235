/** Shared by the transport benchmark and its worker peer; the DTLS and TCP-carrier loss tests use `lossy`. */
import type { DatagramSession } from "../../lib/dtls/session.ts";
import { seededRandom } from "../../lib/testing/seeded_random.ts";

export const BENCH_IDENTITY = "bench.example.com";
export const BENCH_PSK = Uint8Array.from({ length: 32 }, (_, i) => (i * 17 + 5) & 0xff);

/** Wraps a session so that its sends are dropped with probability `lossRate` (seeded). */
export function lossy(session: DatagramSession, lossRate: number, seed: number): DatagramSession {
  if (lossRate <= 0) return session;
  const random = seededRandom(seed);
  return new Proxy(session, {
    get(target, prop) {
      if (prop === "send") {
        return (data: Uint8Array) => {
          if (random() < lossRate) return;
          target.send(data);
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}
