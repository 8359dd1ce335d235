/**
 * `deno task dev`: the whole product on loopback with the embedded database. The admin key is
 * generated once and kept in data/dev/admin-key; Ctrl-C stops everything.
 */
const root = new URL("../", import.meta.url);
const dataDir = new URL("data/dev/", root).pathname;
await Deno.mkdir(dataDir, { recursive: true });
const keyFile = `${dataDir}admin-key`;
let adminKey = (await Deno.readTextFile(keyFile).catch(() => "")).trim();
if (!adminKey) {
  adminKey = Array.from(crypto.getRandomValues(new Uint8Array(24)), (b) => b.toString(16).padStart(2, "0"))
    .join("");
  await Deno.writeTextFile(keyFile, adminKey, { mode: 0o600 });
}
const httpPort = Number(Deno.env.get("HOP_DEV_HTTP_PORT") ?? 8080);
const env = {
  HOP_SERVER_DOMAIN: "hop.localhost",
  HOP_ADMIN_API_KEY: adminKey,
  HOP_SERVER_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
  HOP_DATA_DIR: dataDir,
  HOP_LOG_FORMAT: "pretty",
};
console.log(`HopGate dev: admin key ${adminKey} (kept in ${keyFile})`);
console.log(
  `  curl -s -H 'Authorization: Bearer ${adminKey}' -H 'content-type: application/json' \\\n` +
    `    -d '{"domain":"app.example.com"}' http://127.0.0.1:${httpPort}/api/v1/admin/domains`,
);
const server = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", new URL("server.ts", root).pathname],
  env,
  stdin: "null",
}).spawn();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => server.kill("SIGTERM"));
}
Deno.exit((await server.status).code);
