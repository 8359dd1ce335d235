/**
 * `deno task dev`: the whole product on loopback with the embedded database and self-signed
 * certificates: the server, a demo web app (page, WebSocket echo, server-sent events), the domain
 * demo.localhost registered, and a client forwarding to the demo app. Ctrl-C stops everything.
 * The admin key is generated once and kept in data/dev/admin-key.
 */
import { startDemoApp } from "./demo_app.ts";

const root = new URL("../", import.meta.url);
const dataDir = new URL("data/dev", root).pathname;
const DOMAIN = "demo.localhost";
const httpPort = Number(Deno.env.get("HOP_DEV_HTTP_PORT") ?? 8080);
const httpsPort = Number(Deno.env.get("HOP_DEV_HTTPS_PORT") ?? 8443);

async function secret(file: string, bytes: number): Promise<string> {
  const existing = (await Deno.readTextFile(file).catch(() => "")).trim();
  if (existing) return existing;
  const fresh = Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  await Deno.writeTextFile(file, fresh, { mode: 0o600 });
  return fresh;
}

function spawn(entry: string, env: Record<string, string>, stdout: "piped" | "inherit"): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(entry, root).pathname],
    env,
    stdin: "null",
    stdout,
    stderr: "inherit",
  }).spawn();
}

/** Echoes the server's JSON lines in a compact form and resolves with its `server ready` line. */
function followServer(server: Deno.ChildProcess): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    (async () => {
      let buf = "";
      for await (const chunk of server.stdout.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          try {
            const o = JSON.parse(line) as Record<string, unknown>;
            if (o.msg === "server ready") resolve(o);
            const { time: _t, level, msg, component, ...rest } = o;
            if (msg === "request" || level === "debug") continue;
            console.log(`[server] ${level} ${component ?? ""} ${msg} ${JSON.stringify(rest)}`);
          } catch {
            console.log(`[server] ${line}`);
          }
        }
      }
      reject(new Error("the server exited before it was ready"));
    })();
  });
}

await Deno.mkdir(dataDir, { recursive: true });
const adminKey = await secret(`${dataDir}/admin-key`, 24);
const server = spawn("server.ts", {
  HOP_SERVER_DOMAIN: "hop.localhost",
  HOP_ADMIN_API_KEY: adminKey,
  HOP_SERVER_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
  HOP_SERVER_HTTPS_LISTEN: `127.0.0.1:${httpsPort}`,
  HOP_SERVER_DTLS_LISTEN: `127.0.0.1:${httpsPort}`,
  HOP_DATA_DIR: dataDir,
  HOP_SERVER_TLS_MODE: "self-signed",
}, "piped");
const children: Deno.ChildProcess[] = [server];
const stopAll = () => {
  for (const c of children) {
    try {
      c.kill("SIGTERM");
    } catch { /* already gone */ }
  }
};
for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, stopAll);

let ready: Record<string, unknown>;
try {
  ready = await followServer(server);
} catch (e) {
  console.error(`dev: ${(e as Error).message}`);
  Deno.exit(1);
}
const caFile = String(ready.ca);
const http = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(caFile)] });
const api = `https://localhost:${httpsPort}/api/v1/admin`;
const headers = { authorization: `Bearer ${adminKey}`, "content-type": "application/json" };
const keyFile = `${dataDir}/demo-client-key`;
let clientKey = (await Deno.readTextFile(keyFile).catch(() => "")).trim();
const registered = await fetch(`${api}/domains`, {
  method: "POST",
  headers,
  body: JSON.stringify({ domain: DOMAIN, memo: "deno task dev" }),
  client: http,
});
if (registered.status === 201) clientKey = (await registered.json()).client_api_key;
else {
  await registered.body?.cancel();
  if (!clientKey) {
    const rotated = await fetch(`${api}/domains/${DOMAIN}/rotate-key`, {
      method: "POST",
      headers,
      client: http,
    });
    clientKey = (await rotated.json()).client_api_key;
  }
}
await Deno.writeTextFile(keyFile, clientKey, { mode: 0o600 });

const demo = startDemoApp(0);
const client = spawn("client.ts", {
  HOP_CLIENT_SERVER_ADDR: `127.0.0.1:${httpsPort}`,
  HOP_CLIENT_DOMAIN: DOMAIN,
  HOP_CLIENT_API_KEY: clientKey,
  HOP_CLIENT_LOCAL_TARGET: `127.0.0.1:${demo.addr.port}`,
  HOP_LOG_FORMAT: "pretty",
}, "inherit");
children.push(client);

console.log(`
HopGate dev is up.
  demo app        http://127.0.0.1:${demo.addr.port}
  through HopGate https://${DOMAIN}:${httpsPort}/   (browsers resolve *.localhost; trust ${caFile} to drop the warning)
  try it:         curl --cacert ${caFile} --resolve ${DOMAIN}:${httpsPort}:127.0.0.1 https://${DOMAIN}:${httpsPort}/
  admin API:      curl --cacert ${caFile} -H 'Authorization: Bearer ${adminKey}' ${api}/domains
Ctrl-C stops everything.
`);

const [serverStatus] = await Promise.all([server.status, client.status]);
await demo.shutdown();
http.close();
Deno.exit(serverStatus.code === 0 || serverStatus.signal ? 0 : serverStatus.code);
