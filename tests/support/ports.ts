/** Loopback ports for tests that need one before they start a listener (a process, a service that is down). */

/** A TCP port that was free a moment ago on 127.0.0.1 (nothing listens there now: "connection refused"). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** The first port of the kernel's ephemeral range (bind to port 0, outgoing connections), 32768 if unknown. */
function ephemeralLow(): number {
  try {
    const low = Number(
      Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range").trim().split(/\s+/)[0],
    );
    return Number.isInteger(low) && low > 2048 ? low : 32768;
  } catch {
    return 32768;
  }
}

function freeOnTcpAndUdp(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

/**
 * A port below the ephemeral range, free on TCP and UDP when chosen, for a server that is stopped and
 * started again on the same port. A port from bind(0) is an ephemeral one: while its server is down, any
 * outgoing connection or bind(0) elsewhere in the suite (test files run side by side) may take it, and the
 * restart fails with "Address already in use". Ports below the range are only taken by choice.
 */
export function restartablePort(): number {
  const high = ephemeralLow();
  const low = Math.max(1024, high - 12_000);
  for (;;) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (freeOnTcpAndUdp(port)) return port;
  }
}

/** HTTP, HTTPS and DTLS ports for a server that will be restarted on them (see restartablePort). */
export function restartablePorts(): { http: number; https: number; dtls: number } {
  const http = restartablePort();
  let https = restartablePort();
  while (https === http) https = restartablePort();
  let dtls = restartablePort();
  while (dtls === http || dtls === https) dtls = restartablePort();
  return { http, https, dtls };
}
