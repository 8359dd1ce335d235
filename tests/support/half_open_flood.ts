/**
 * An attacker process: cookie-verified half-open DTLS handshakes from many loopback addresses,
 * wave after wave until killed. Prints one JSON line `{"ready":N}` after the first wave (N =
 * handshakes the server answered with flight 4). Its own process, so the attacker's CPU does not
 * slow the legitimate client the test measures.
 *
 *   deno run -A tests/support/half_open_flood.ts HOST PORT IDENTITY ADDRESSES PER_ADDRESS
 */
import { wireHandshake } from "./dtls_wire.ts";

const [hostname, port, identity, addresses = "80", perAddress = "16"] = Deno.args;
const target = { hostname, port: Number(port) };
const sockets: Deno.DatagramConn[] = [];

async function wave(): Promise<number> {
  const jobs: Promise<string>[] = [];
  for (let a = 0; a < Number(addresses); a++) {
    for (let i = 0; i < Number(perAddress); i++) {
      jobs.push(wireHandshake(target, {
        bind: `127.0.${1 + (a >> 8)}.${2 + (a & 0xff)}`,
        identity,
        psk: new Uint8Array(32),
        halfOpen: true,
        // Patient enough that a loaded CI machine still opens the whole first wave (1.5 s opened
        // only 408 of the 640 the server admits, once, beside the rest of the suite).
        timeoutMs: 4000,
        resendMs: 500,
        keepSocket: (s) => sockets.push(s),
      }));
    }
  }
  return (await Promise.all(jobs)).filter((r) => r === "half_open").length;
}

console.log(JSON.stringify({ ready: await wave() }));
// Keep the pressure on; old sockets stay open so the server sees live peers.
while (true) await wave();
