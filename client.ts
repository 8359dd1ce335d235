/**
 * hopgate-client: configuration → DTLS session → tunnel → local forwarder.
 * On a terminal it prints one line at start and one per request; JSON logs otherwise.
 */
import { exitOnConfigError } from "./lib/config/build.ts";
import { helpText } from "./lib/config/options.ts";
import { allServices, clientOptions, loadClientConfig } from "./lib/config/client_config.ts";
import { VERSION } from "./lib/config/version.ts";
import { createLogger } from "./lib/log/logger.ts";
import { KeyRejectedError } from "./lib/proxy/tunnel_client.ts";
import { runMultiTunnelClient } from "./lib/proxy/multi_client.ts";
import type { ServedRequest } from "./lib/proxy/local_target.ts";
import { createMetrics, serveMetrics } from "./lib/metrics/metrics.ts";
import type { TransportConnection } from "./lib/transport/types.ts";

function requestLine(r: ServedRequest): string {
  const time = new Date().toTimeString().slice(0, 8);
  const status = r.status === 0 ? "---" : String(r.status);
  return `${time}  ${r.method.padEnd(7)} ${status}  ${r.durationMs.toFixed(0).padStart(5)} ms  ${r.path}${
    r.error ? `  (${r.error})` : ""
  }`;
}

async function main(): Promise<void> {
  let built;
  try {
    built = loadClientConfig({ args: Deno.args, env: Deno.env.toObject() });
  } catch (e) {
    exitOnConfigError(e, "hopgate-client");
  }
  if (built.help) {
    console.log(
      helpText(
        `hopgate-client ${VERSION}: the private side of a HopGate tunnel`,
        "hopgate-client [options]",
        clientOptions,
      ),
    );
    return;
  }
  if (built.version) {
    console.log(`hopgate-client ${VERSION}`);
    return;
  }
  const config = built.config;
  const terminal = config.logFormat === "pretty" || (config.logFormat === "auto" && Deno.stdout.isTerminal());
  // On a terminal the request lines are the output; logs below warn would drown them.
  const logger = createLogger({
    level: terminal && !config.debug && config.logLevel === "info" ? "warn" : config.logLevel,
    format: terminal ? "pretty" : "json",
  });
  const services = allServices(config);
  const abort = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, () => abort.abort());
  let announced = "";
  // One session per server address (lib/proxy/multi_client.ts).
  const current = new Map<TransportConnection, string>();
  const metrics = createMetrics({
    sessions: () =>
      [...current].map(([connection, id]) => ({ id, domain: config.domain, stats: connection.stats() })),
  }, "hopgate_client_");
  const metricsServer = config.metricsListen ? serveMetrics(metrics, config.metricsListen) : undefined;
  try {
    await runMultiTunnelClient({
      servers: config.serverAddrs,
      maxSessions: config.maxSessions,
      domain: config.domain,
      apiKey: config.apiKey,
      services,
      hostMode: config.hostHeader,
      clientVersion: VERSION,
      logger,
      signal: abort.signal,
      onConnected(publicUrl, sessionId, connection) {
        current.set(connection, sessionId);
        connection.closed.then(() => current.delete(connection), () => current.delete(connection));
        if (!terminal) return;
        if (announced === publicUrl) {
          console.log(`Reconnected (session ${sessionId})`);
          return;
        }
        announced = publicUrl;
        for (const s of services) {
          const from = `${publicUrl}${s.prefix === "/" ? "" : s.prefix}`;
          console.log(`Forwarding ${from} -> ${s.target.href.replace(/\/$/, "")}`);
        }
      },
      onRequest(r) {
        metrics.observeRequest({
          domain: config.domain,
          status: r.status,
          durationMs: r.durationMs,
          bytesIn: r.bytesIn,
          bytesOut: r.bytesOut,
        });
        if (terminal) console.log(requestLine(r));
        else {
          logger.info({
            component: "forwarder",
            request_id: r.requestId,
            method: r.method,
            path: r.path,
            status: r.status,
            duration_ms: Math.round(r.durationMs * 10) / 10,
            bytes_in: r.bytesIn,
            bytes_out: r.bytesOut,
            upgrade: r.upgrade || undefined,
            error: r.error,
          }, "request");
        }
      },
    });
  } catch (e) {
    if (e instanceof KeyRejectedError) {
      console.error(`hopgate-client: ${e.message}`);
      logger.error({ component: "tunnel", code: e.code }, e.message);
      Deno.exit(1);
    }
    throw e;
  }
  await metricsServer?.shutdown();
  Deno.exit(0);
}

if (import.meta.main) await main();
