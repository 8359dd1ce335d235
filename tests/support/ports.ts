/** Loopback ports for tests that need one before they start a listener (a process, a service that is down). */

/** A TCP port that was free a moment ago on 127.0.0.1 (nothing listens there now: "connection refused"). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
