/**
 * Issue 11 item 1 against the real server process: server.ts runs under `prlimit --nofile=600`; idle
 * TCP connections exhaust its descriptors (EMFILE at accept); once they
 * close, the HTTPS and HTTP listeners answer again within 5 s, and the failed accepts were logged.
 * Also: a bare connection that never sends a TLS hello is cut by the handshake timeout.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { ADMIN_KEY, SERVER_DOMAIN } from "./support/server.ts";
import { sleep } from "./support/wait.ts";
import { makeScratchDir } from "./support/scratch.ts";

async function curlCode(args: string[]): Promise<string> {
  const out = await new Deno.Command("curl", {
    args: ["-s", "--max-time", "1", "-o", "/dev/null", "-w", "%{http_code}", ...args],
  })
    .output();
  return new TextDecoder().decode(out.stdout);
}

Deno.test("the real server's listeners recover within 5 s after a descriptor-exhausting flood; a silent TLS peer is cut", async () => {
  const dataDir = await makeScratchDir("hopgate-flood-");
  const child = new Deno.Command("prlimit", {
    args: [
      "--nofile=600:600",
      Deno.execPath(),
      "run",
      "-A",
      new URL("../server.ts", import.meta.url).pathname,
    ],
    env: {
      HOP_SERVER_DOMAIN: SERVER_DOMAIN,
      HOP_ADMIN_API_KEY: ADMIN_KEY,
      HOP_SERVER_HTTP_LISTEN: "127.0.0.1:0",
      HOP_SERVER_HTTPS_LISTEN: "127.0.0.1:0",
      HOP_SERVER_DTLS_LISTEN: "127.0.0.1:0",
      HOP_SERVER_METRICS_LISTEN: "off",
      HOP_SERVER_TLS_MODE: "self-signed",
      HOP_SERVER_TLS_HANDSHAKE_TIMEOUT: "2s",
      // The flood comes from one address: lift its cap so the descriptors, not the cap, run out.
      HOP_SERVER_MAX_CONNECTIONS_PER_IP: "5000",
      HOP_DATA_DIR: dataDir,
      HOP_LOG_LEVEL: "info",
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const pump = (async () => {
    let buffered = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      lines.push(...parts);
    }
  })();
  const flood: Deno.Conn[] = [];
  try {
    let ready: Record<string, string> | undefined;
    for (let i = 0; i < 300 && !ready; i++) {
      const l = lines.find((l) => l.includes('"server ready"'));
      if (l) ready = JSON.parse(l);
      else await sleep(100);
    }
    assert(ready, `the server did not start: ${lines.join("\n")}`);
    const https = Number(ready.https.split(":").pop());
    const http = Number(ready.http.split(":").pop());

    const silent = await Deno.connect({ hostname: "127.0.0.1", port: https });
    const cut = (async () => {
      const started = performance.now();
      const n = await silent.read(new Uint8Array(16)).catch(() => null);
      return { n, ms: performance.now() - started };
    })();

    // 800 idle connections: past the 600-descriptor limit.
    for (let i = 0; i < 800; i++) {
      try {
        flood.push(await Deno.connect({ hostname: "127.0.0.1", port: https }));
      } catch {
        break; // the backlog is full: that is the point
      }
    }
    await sleep(1000);
    for (const c of flood.splice(0)) c.close();
    const t0 = Date.now();
    let ok = { http: false, https: false };
    while (Date.now() - t0 < 5000 && !(ok.http && ok.https)) {
      const [h, s] = await Promise.all([
        curlCode(["-H", `host: ${SERVER_DOMAIN}`, `http://127.0.0.1:${http}/healthz`]),
        curlCode([
          "-k",
          "--resolve",
          `${SERVER_DOMAIN}:${https}:127.0.0.1`,
          `https://${SERVER_DOMAIN}:${https}/healthz`,
        ]),
      ]);
      ok = { http: ok.http || h === "308", https: ok.https || s === "200" };
    }
    assertEquals(ok, { http: true, https: true }, `not recovered after ${Date.now() - t0} ms`);
    console.log(
      `recovered in ${Date.now() - t0} ms after ${
        lines.filter((l) => l.includes("accept")).length
      } accept lines`,
    );
    assert(
      lines.some((l) => /accept/.test(l) && /"level":"warn"/.test(l)),
      "the failed accepts were logged at warn",
    );

    const { n, ms } = await cut;
    assertEquals(n, null, "the silent TLS peer was closed");
    assert(ms < 5000, `cut after ${Math.round(ms)} ms (handshake timeout 2 s)`);
    silent.close();
  } finally {
    for (const c of flood) c.close();
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await pump.catch(() => {});
    await child.stderr.cancel().catch(() => {});
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
