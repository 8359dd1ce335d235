/** The transport over plain UDP sockets on 127.0.0.1 (UdpSession, as the benchmark uses it). */
import { Connection } from "../lib/transport/connection.ts";
import type { TransportStream } from "../lib/transport/types.ts";
import { UdpSession } from "../lib/transport/udp_session.ts";
import { assertEquals } from "./support/assert.ts";
import { readData, writeData } from "./support/transport_sim.ts";

Deno.test("over UDP on loopback: 20 MB each way arrive intact; closing ends both sides", async () => {
  const a = new UdpSession({ hostname: "127.0.0.1", port: 0 });
  const b = new UdpSession({ hostname: "127.0.0.1", port: 0, remote: a.localAddress });
  b.send(new Uint8Array([0])); // introduces b to a; not a transport packet, so it is dropped
  await a.connected;
  const server = new Connection(a, { role: "server" });
  const client = new Connection(b, { role: "client" });
  const incoming = new Promise<TransportStream>((resolve) => server.onStream(resolve));
  const c = await client.openStream();
  const cWrote = writeData(c, 20 * 1024 * 1024, 1);
  const s = await incoming;
  const sWrote = writeData(s, 20 * 1024 * 1024, 2);
  const [cGot, sGot] = await Promise.all([readData(c), readData(s)]);
  assertEquals(sGot.sha256, await cWrote);
  assertEquals(cGot.sha256, await sWrote);
  await client.close(0, "done");
  // Plain UDP has no close_notify: the server learns from CONNECTION_CLOSE.
  assertEquals(await server.closed, { kind: "remote", code: 0, reason: "done" });
  await a.closed;
  await b.closed;
});
