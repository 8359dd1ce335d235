/**
 * Run as its own process by tests/local_http_node.test.ts, so the trust store comes from its
 * environment (DENO_TLS_CA_STORE, SSL_CERT_FILE): serves https with the given certificate and key,
 * requests it through sendLocal without a `ca` option, prints the body or the error code.
 *
 *   deno run -A tests/support/local_https_probe.ts CERT.pem KEY.pem
 */
import https from "node:https";
import { closeLocalConnections } from "../../lib/proxy/local_http.ts";
import { latin1, request } from "./local_http.ts";

const [certPath, keyPath] = Deno.args;
const server = https.createServer(
  { cert: Deno.readTextFileSync(certPath), key: Deno.readTextFileSync(keyPath) },
  (_req, res) => res.end("trusted"),
);
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
const url = new URL(`https://127.0.0.1:${(server.address() as { port: number }).port}`);
const outcome = await request(url, { target: "/", headers: [["Host", "h"]] }).then(
  (res) => latin1(res.body),
  (e) => e.code ?? String(e),
);
console.log(outcome);
closeLocalConnections();
server.close();
