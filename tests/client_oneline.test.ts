/**
 * The one-line client as a real process: `login` writes the per-user config file (0600), then
 * `hopgate-client http PORT` starts a working tunnel from it alone, shows its banner, and leaves on
 * Ctrl-C (SIGINT) with exit code 0.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { runDenoWithInput, startProcess } from "./support/process.ts";
import { curl, startTunnelServer, stopProcess, type TunnelServer } from "./support/tunnel_env.ts";
import { startOrigin } from "./support/tunnel_origin.ts";
import { loadClientConfig } from "../lib/config/client_config.ts";
import { ConfigError } from "../lib/config/options.ts";
import { runLogin } from "../lib/config/client_login.ts";
import { eventually } from "./support/wait.ts";

const ROOT = new URL("../", import.meta.url);

/** Runs `client.ts login ...` with the key on stdin; returns exit code and output. */
function login(xdg: string, args: string[], stdin: string) {
  return runDenoWithInput(
    [
      "run",
      "-A",
      "--config",
      new URL("deno.json", ROOT).pathname,
      new URL("client.ts", ROOT).pathname,
      "login",
      ...args,
    ],
    stdin,
    { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", XDG_CONFIG_HOME: xdg, NO_COLOR: "1" },
  );
}

Deno.test("config: flags > environment > .env > user config file; `http TARGET` is the local target", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hopgate-cfg-" });
  try {
    const key = "ab".repeat(32);
    await Deno.mkdir(`${dir}/hopgate`);
    await Deno.writeTextFile(
      `${dir}/hopgate/client.env`,
      `HOP_CLIENT_SERVER_ADDR=file.example.com:443\nHOP_CLIENT_DOMAIN=file.example.com\nHOP_CLIENT_API_KEY=${key}\n`,
    );
    await Deno.writeTextFile(`${dir}/.env`, "HOP_CLIENT_DOMAIN=dotenv.example.com\n");
    const env = { XDG_CONFIG_HOME: dir };
    const a = loadClientConfig({ args: ["http", "3000"], env, envFile: `${dir}/none.env` }).config;
    assertEquals([a.serverAddr.hostname, a.domain, a.apiKey], ["file.example.com", "file.example.com", key]);
    assertEquals(a.localTarget?.href, "http://127.0.0.1:3000/");
    assertEquals(a.inspectListen, { hostname: "127.0.0.1", port: 4040 });
    const b =
      loadClientConfig({ args: ["http", "http://localhost:8080"], env, envFile: `${dir}/.env` }).config;
    assertEquals([b.domain, b.localTarget?.href], ["dotenv.example.com", "http://localhost:8080/"]);
    const c = loadClientConfig({
      args: ["http", "127.0.0.1:8081", "--domain", "flag.example.com", "--inspect-listen", "off"],
      env: { ...env, HOP_CLIENT_DOMAIN: "env.example.com" },
      envFile: `${dir}/.env`,
    }).config;
    assertEquals([c.domain, c.localTarget?.href, c.inspectListen], [
      "flag.example.com",
      "http://127.0.0.1:8081/",
      null,
    ]);
    const d =
      loadClientConfig({ args: ["http", "3000"], env: { ...env, HOP_CLIENT_DOMAIN: "env.example.com" } })
        .config;
    assertEquals(d.domain, "env.example.com");
    let err: unknown;
    try {
      loadClientConfig({ args: ["http"], env });
    } catch (e) {
      err = e;
    }
    assert(err instanceof ConfigError && /needs the local target/.test(err.message), String(err));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("one-line client: login writes a 0600 file, `http PORT` tunnels from it, banner, Ctrl-C exits 0", async (t) => {
  const origin = startOrigin("oneline");
  const xdg = await Deno.makeTempDir({ prefix: "hopgate-xdg-" });
  let srv: TunnelServer | undefined;
  try {
    srv = await startTunnelServer();
    const s = srv;
    const key = await s.register("one.test");

    await t.step("login rejects a bad key with exit 2 and writes nothing", async () => {
      const r = await login(xdg, ["--server-addr", s.dtls, "--domain", "one.test"], "not-a-key\n");
      assertEquals(r.code, 2, r.stderr);
      assertMatch(r.stderr, /must be 64 hex characters/);
      assert(!(await Deno.stat(`${xdg}/hopgate/client.env`).catch(() => null)), "no file written");
    });

    await t.step("login with the key on stdin writes client.env with mode 0600", async () => {
      const r = await login(xdg, ["--server-addr", s.dtls, "--domain=one.test"], `${key}\n`);
      assertEquals(r.code, 0, r.stderr);
      const path = `${xdg}/hopgate/client.env`;
      assertMatch(r.stdout, new RegExp(`Saved to ${path}`));
      assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
      const text = await Deno.readTextFile(path);
      assertMatch(text, new RegExp(`HOP_CLIENT_API_KEY="${key}"`));
      assertMatch(text, /HOP_CLIENT_DOMAIN="one.test"/);
    });

    await t.step("login --api-key-file reads the key from a file", async () => {
      const keyFile = `${xdg}/key.txt`;
      await Deno.writeTextFile(keyFile, key);
      const r = await login(
        xdg,
        ["--server-addr", s.dtls, "--domain", "one.test", "--api-key-file", keyFile],
        "",
      );
      assertEquals(r.code, 0, r.stderr);
    });

    await t.step(
      "`http PORT` (JSON logs) reports the public URL, target and carrier udp, and serves",
      async () => {
        const proc = startProcess("client.ts", ["http", String(origin.port)], {
          XDG_CONFIG_HOME: xdg,
          HOP_LOG_FORMAT: "json",
          HOP_CLIENT_INSPECT_LISTEN: "off",
        });
        try {
          const ready = await proc.waitFor((l) => l.msg === "client ready", 20_000);
          assertEquals(ready.public_url, `https://one.test:${s.httpsPort}`.replace(/:443$/, ""));
          assertEquals(ready.carrier, "udp");
          assertEquals(ready.local_targets, [`/=http://127.0.0.1:${origin.port}/`]);
          const r = await curl(s, "one.test", "/who");
          assertEquals([r.status, r.text], [200, "oneline"]);
        } finally {
          await stopProcess(proc);
        }
      },
    );

    await t.step(
      "the client serves its inspector; a taken inspector port is reported and the tunnel still runs",
      async () => {
        const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const takenPort = (taken.addr as Deno.NetAddr).port;
        const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const freePort = (free.addr as Deno.NetAddr).port;
        free.close();
        const a = startProcess("client.ts", ["http", String(origin.port)], {
          XDG_CONFIG_HOME: xdg,
          HOP_LOG_FORMAT: "json",
          HOP_CLIENT_INSPECT_LISTEN: `127.0.0.1:${freePort}`,
        });
        const b = startProcess("client.ts", ["http", String(origin.port)], {
          XDG_CONFIG_HOME: xdg,
          HOP_LOG_FORMAT: "json",
          HOP_CLIENT_INSPECT_LISTEN: `127.0.0.1:${takenPort}`,
        });
        try {
          const readyA = await a.waitFor((l) => l.msg === "client ready", 20_000);
          assertEquals(readyA.inspector, `http://127.0.0.1:${freePort}`);
          const res = await fetch(`http://127.0.0.1:${freePort}/api/requests`);
          assertEquals(res.status, 200);
          assert(Array.isArray((await res.json()).requests));
          const page = await fetch(`http://127.0.0.1:${freePort}/`);
          assertMatch(await page.text(), /<title>HopGate inspector<\/title>/);
          const readyB = await b.waitFor((l) => l.msg === "client ready", 20_000);
          assertMatch(String(readyB.inspector), /^unavailable: .*already in use/);
          assertMatch(b.stderr(), /inspector not started: .*already in use.*HOP_CLIENT_INSPECT_LISTEN/);
        } finally {
          taken.close();
          await Promise.all([stopProcess(a), stopProcess(b)]);
        }
      },
    );

    await t.step(
      "`http http://127.0.0.1:PORT` on a terminal-style log prints the banner; SIGINT exits 0",
      async () => {
        const proc = startProcess("client.ts", [
          "http",
          `http://127.0.0.1:${origin.port}`,
          "--log-format=pretty",
        ], {
          XDG_CONFIG_HOME: xdg,
          HOP_CLIENT_INSPECT_LISTEN: "off",
        });
        try {
          await proc.waitFor((l) => l.msg.includes("Carrier"), 20_000);
          const text = proc.lines.map((l) => l.msg).join("\n");
          assertMatch(text, /HopGate tunnel up \(Ctrl-C to stop\)/);
          assertMatch(
            text,
            new RegExp(
              `Forwarding +https://one\\.test:${s.httpsPort} -> http://127\\.0\\.0\\.1:${origin.port}`,
            ),
          );
          assertMatch(text, /Carrier +UDP \(DTLS\)/);
          assertMatch(text, /Inspector +off/);
          const r = await curl(s, "one.test", "/who");
          assertEquals(r.status, 200);
          await eventually(() => proc.lines.some((l) => /GET .*200.*\/who/.test(l.msg)), "the request line");
          const started = performance.now();
          proc.child.kill("SIGINT");
          const status = await proc.status;
          assertEquals(status.code, 0, proc.stderr());
          assert(proc.lines.some((l) => l.msg === "Stopped."), "says it stopped");
          console.log(`client left ${Math.round(performance.now() - started)} ms after SIGINT`);
        } finally {
          await stopProcess(proc, 1000);
        }
      },
    );
  } finally {
    await srv?.cleanup();
    await origin.close();
    await Deno.remove(xdg, { recursive: true });
  }
});

Deno.test("login: keeps the other variables of an existing file and refuses a missing server address", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hopgate-login-" });
  try {
    await Deno.mkdir(`${dir}/hopgate`);
    await Deno.writeTextFile(
      `${dir}/hopgate/client.env`,
      "HOP_CLIENT_INSPECT_LISTEN=off\nHOP_CLIENT_DOMAIN=old.example.com\n",
    );
    const key = "cd".repeat(32);
    const path = await runLogin({
      args: ["--server-addr=hop.example.com:443", "--domain", "new.example.com"],
      env: { XDG_CONFIG_HOME: dir },
      readStdin: () => Promise.resolve(`  ${key}\n`),
    });
    const text = await Deno.readTextFile(path);
    assertMatch(text, /HOP_CLIENT_INSPECT_LISTEN="off"/);
    assertMatch(text, /HOP_CLIENT_DOMAIN="new.example.com"/);
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
    const c =
      loadClientConfig({ args: ["http", "3000"], env: { XDG_CONFIG_HOME: dir }, envFile: `${dir}/none` })
        .config;
    assertEquals([c.domain, c.apiKey, c.inspectListen], ["new.example.com", key, null]);
    let err: unknown;
    try {
      await runLogin({
        args: ["--domain", "x.example.com"],
        env: { XDG_CONFIG_HOME: dir },
        readStdin: () => Promise.resolve(key),
      });
    } catch (e) {
      err = e;
    }
    assert(err instanceof ConfigError && /--server-addr: is required/.test(err.message), String(err));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
