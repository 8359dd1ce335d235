/**
 * The tunnel when its server goes away, with real processes over UDP: SIGKILLed and restarted on the same
 * ports, or stopped (SIGSTOP) so that it says nothing.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { startTunnelClient, startTunnelServer, stopProcess } from "./support/tunnel_env.ts";
import type { TunnelClient } from "./support/tunnel_env.ts";
import { startOrigin } from "./support/tunnel_origin.ts";
import { restartablePorts } from "./support/ports.ts";
import { DOMAIN, restartAndMeasure, who } from "./support/tunnel_checks.ts";
import { eventually, sleep } from "./support/wait.ts";

Deno.test("udp: SIGKILL the server and restart it: the first request is answered within 5 s of ready", async () => {
  const origin = startOrigin("kill");
  const srv = await startTunnelServer({ ports: restartablePorts() }); // restarted on the same ports
  let client: TunnelClient | undefined;
  try {
    const key = await srv.register(DOMAIN);
    client = await startTunnelClient({ dtls: srv.dtls, domain: DOMAIN, key, target: origin.target });
    assertEquals(client.ups()[0].carrier, "udp");
    assertEquals(await who(srv), 200);
    await sleep(2000); // idle: only keep-alives flow
    await restartAndMeasure(srv, client);
  } finally {
    if (client) await stopProcess(client.proc);
    await srv.cleanup();
    await origin.close();
  }
});

Deno.test("udp: a server that stops answering (SIGSTOP) is noticed by the client within 5 s", async () => {
  const origin = startOrigin("stop");
  const srv = await startTunnelServer();
  let client: TunnelClient | undefined;
  try {
    const key = await srv.register(DOMAIN);
    client = await startTunnelClient({ dtls: srv.dtls, domain: DOMAIN, key, target: origin.target });
    assertEquals(await who(srv), 200);
    const c = client;
    const before = c.proc.lines.length;
    srv.proc.child.kill("SIGSTOP");
    const stopped = performance.now();
    try {
      await eventually(
        () => c.proc.lines.slice(before).some((l) => /^tunnel closed/.test(l.msg)),
        "the client to give the tunnel up",
        8000,
        20,
      );
    } finally {
      srv.proc.child.kill("SIGCONT");
    }
    const ms = Math.round(performance.now() - stopped);
    console.log(`client gave the silent server up after ${ms} ms`);
    assert(ms <= 5000, `noticed after ${ms} ms, expected ≤ 5000`);
    await c.waitUp(2, 10_000);
    assertEquals(await who(srv), 200);
  } finally {
    if (client) await stopProcess(client.proc);
    await srv.cleanup();
    await origin.close();
  }
});
