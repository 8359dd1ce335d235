/**
 * Both fronts in a child process, for the EMFILE test (run under a lowered fd limit). Prints
 * `{"ports":{...}}` then the fronts' JSON log lines.
 */
import { createLogger } from "../../lib/log/logger.ts";
import { startHttpFront, startHttpsFront } from "../../lib/proxy/front.ts";
import { testCert, testHandler, testSni } from "./front_fixture.ts";

const pair = await testCert();
const logger = createLogger({ level: "warn" });
// The per-address cap off: the flood comes from one address and must exhaust descriptors.
const limits = { maxConnectionsPerAddress: 1_000_000, acceptBackoffMs: 50 };
const listen = { hostname: "127.0.0.1", port: 0 };
const http = await startHttpFront({ listen, handler: testHandler(), limits, logger });
const https = await startHttpsFront({
  listen,
  handler: testHandler(),
  defaultCert: pair,
  sni: testSni(pair),
  limits,
  logger,
});
console.log(JSON.stringify({ ports: { http: http.addr.port, https: https.addr.port } }));
