/**
 * Probes shared by the tunnel tests that take the network or the server away (tunnel_carrier,
 * tunnel_server_loss, tunnel_udp_blocked): requests to the tunnelled domain, its sessions in the admin
 * API, a WebSocket echo, and a SIGKILLed server restarted on its ports.
 */
import WebSocket from "ws";
import { assert, assertEquals } from "./assert.ts";
import { startTunnelServer, type TunnelClient, type TunnelServer } from "./tunnel_env.ts";
import { sleep } from "./wait.ts";

/** The domain these tests register and tunnel. */
export const DOMAIN = "app.test";
/** The DTLS port of a test server. */
export const dtlsPort = (srv: TunnelServer) => Number(srv.dtls.split(":")[1]);

/** Client environment for the TCP carrier against the self-signed test server. */
export const tcpEnv = (srv: TunnelServer, extra: Record<string, string> = {}) => ({
  HOP_CLIENT_CA_FILE: srv.caFile,
  HOP_CLIENT_SERVER_NAME: "hop.test",
  ...extra,
});

/** GET /who on the tunnelled domain: its status, or 0 when the request failed or timed out. */
export async function who(srv: TunnelServer, timeoutMs = 3000): Promise<number> {
  try {
    const res = await srv.fetch(srv.url(DOMAIN, "/who"), { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.status;
  } catch {
    return 0;
  }
}

/** GETs /who every `everyMs` until stopped; counts failures (anything but 200). */
export function requestLoop(srv: TunnelServer, everyMs = 100) {
  const results: { at: number; status: number; ms: number }[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const t0 = performance.now();
      const status = await who(srv, 10_000);
      results.push({ at: t0, status, ms: performance.now() - t0 });
      await sleep(everyMs);
    }
  })();
  return {
    results,
    async stop() {
      running = false;
      await done;
      return results;
    },
  };
}

/** The domain's sessions in the admin API. */
export async function sessions(srv: TunnelServer): Promise<{ id: string; carrier: string }[]> {
  const res = await srv.admin(`/domains/${DOMAIN}`);
  const body = await res.json();
  return body.sessions as { id: string; carrier: string }[];
}

/** Opens a WebSocket to /ws through the HTTPS front and checks `n` echoes. */
export async function webSocketEcho(srv: TunnelServer, n: number): Promise<void> {
  // deno-lint-ignore no-explicit-any
  const lookup: any = (_h: string, o: { all?: boolean } | undefined, cb: (...a: unknown[]) => void) =>
    o?.all ? cb(null, [{ address: "127.0.0.1", family: 4 }]) : cb(null, "127.0.0.1", 4);
  const ws = new WebSocket(`wss://${DOMAIN}:${srv.httpsPort}/ws`, { ca: srv.caPem, lookup });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  for (let i = 0; i < n; i++) {
    const echoed = new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("no echo within 5 s")), 5000);
      ws.once("message", (d: Uint8Array) => {
        clearTimeout(t);
        resolve(String(d));
      });
    });
    ws.send(`m${i}`);
    assertEquals(await echoed, `m${i}`);
  }
  ws.close(1000);
}

/** SIGKILLs the server, restarts it on the same ports and data, and returns ms from ready to the first 200. */
export async function restartAndMeasure(first: TunnelServer, client: TunnelClient): Promise<TunnelServer> {
  await first.stop("SIGKILL");
  await first.cleanup({ keepData: true });
  await sleep(800);
  const ports = { http: first.httpPort, https: first.httpsPort, dtls: dtlsPort(first) };
  const second = await startTunnelServer({ dataDir: first.dataDir, ports, ownDataDir: true });
  const ready = performance.now();
  while ((await who(second, 1000)) !== 200) {
    assert(performance.now() - ready < 15_000, "answered within 15 s at all");
    await sleep(50);
  }
  const ms = Math.round(performance.now() - ready);
  console.log(
    `first request answered ${ms} ms after the restarted server was ready (${client.ups().at(-1)?.carrier})`,
  );
  assert(ms <= 5000, `answered ${ms} ms after ready, expected ≤ 5000`);
  Object.assign(first, second);
  return second;
}
