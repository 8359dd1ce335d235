/**
 * The idle footprint of a real client process (issue 13): started as `deno task client` runs it
 * (--no-code-cache), its tunnel up against a real server and its inspector listening, its VmRSS
 * read 2 s after `tunnel up`. Measured 72–78 MB on the benchmark machine (scripts/bench/idle_rss.ts and this test);
 * the bound leaves room for noise and catches a library or module that starts loading at idle.
 */
import { assert } from "./support/assert.ts";
import { startProcess } from "./support/process.ts";
import { startTunnelServer, stopProcess, type TunnelServer } from "./support/tunnel_env.ts";
import { sleep } from "./support/wait.ts";

const BOUND_MB = 85;

function vmRssMb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

Deno.test({
  name: `an idle client with its tunnel up stays under ${BOUND_MB} MB RSS`,
  ignore: Deno.build.os !== "linux",
  async fn() {
    let srv: TunnelServer | undefined;
    let client: ReturnType<typeof startProcess> | undefined;
    try {
      srv = await startTunnelServer();
      const key = await srv.register("rss.example.com");
      client = startProcess(
        "client.ts",
        [],
        {
          HOP_CLIENT_SERVER_ADDR: srv.dtls,
          HOP_CLIENT_DOMAIN: "rss.example.com",
          HOP_CLIENT_API_KEY: key,
          HOP_CLIENT_LOCAL_TARGET: "127.0.0.1:9",
          HOP_CLIENT_INSPECT_LISTEN: "127.0.0.1:0",
          HOP_LOG_FORMAT: "json",
          HOP_LOG_LEVEL: "info",
        },
        undefined,
        ["--no-code-cache"],
      );
      await client.waitFor((l) => l.msg === "tunnel up", 20_000);
      await sleep(2000);
      const rss = vmRssMb(client.child.pid);
      console.log(`idle client: ${rss.toFixed(1)} MB RSS`);
      assert(rss <= BOUND_MB, `idle client uses ${rss.toFixed(1)} MB RSS, over ${BOUND_MB} MB`);
    } finally {
      if (client) await stopProcess(client);
      if (srv) await srv.cleanup();
    }
  },
});
