/**
 * hopgate-client: configuration → DTLS session → tunnel → local forwarder.
 * On a terminal it prints one line at start and one per request; JSON logs otherwise.
 */
import { exitOnConfigError } from "./lib/config/build.ts";
import { helpText } from "./lib/config/options.ts";
import {
  allServices,
  clientOptions,
  loadClientConfig,
  type ServiceTarget,
} from "./lib/config/client_config.ts";
import { loginUsage, runLogin } from "./lib/config/client_login.ts";
import { VERSION } from "./lib/config/version.ts";
import { createLogger } from "./lib/log/logger.ts";
import { applyRecordCipher } from "./lib/dtls/aead.ts";
import { setUdpReceiveBuffer, UDP_RECEIVE_BUFFER } from "./lib/dtls/udp_buffer.ts";
import { CarrierTrustError, KeyRejectedError } from "./lib/proxy/tunnel_client.ts";
import { runMultiTunnelClient } from "./lib/proxy/multi_client.ts";
import type { ServedRequest } from "./lib/proxy/local_target.ts";
import type { Metrics } from "./lib/metrics/metrics.ts";
import type { TransportConnection } from "./lib/transport/types.ts";
import { type CaptureStore, createCaptureStore } from "./lib/inspect/capture.ts";
import { type RunningInspector, startInspector } from "./lib/inspect/serve.ts";

/** The private CA's PEM, or exit with the variable and the fix. */
async function readCaFile(file: string | undefined): Promise<string | undefined> {
  if (file === undefined) return undefined;
  let pem: string;
  try {
    pem = await Deno.readTextFile(file);
  } catch (e) {
    console.error(
      `hopgate-client: HOP_CLIENT_CA_FILE ${file} cannot be read: ${(e as Error).message} (give a PEM file)`,
    );
    Deno.exit(1);
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    console.error(
      `hopgate-client: HOP_CLIENT_CA_FILE ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    );
    Deno.exit(1);
  }
  return pem;
}

const carrierName = { udp: "UDP (DTLS)", tcp: "TCP (TLS)" } as const;

function requestLine(r: ServedRequest): string {
  const time = new Date().toTimeString().slice(0, 8);
  const status = r.status === 0 ? "---" : String(r.status);
  return `${time}  ${r.method.padEnd(7)} ${status}  ${r.durationMs.toFixed(0).padStart(5)} ms  ${r.path}${
    r.error ? `  (${r.error})` : ""
  }`;
}

/** The start-up banner: what a developer needs to see once, on a terminal. */
function banner(publicUrl: string, services: ServiceTarget[], carrier: string, inspector: string): string {
  const lines = ["", "HopGate tunnel up (Ctrl-C to stop)", ""];
  for (const s of services) {
    const from = `${publicUrl}${s.prefix === "/" ? "" : s.prefix}`;
    lines.push(`  Forwarding   ${from} -> ${s.target.href.replace(/\/$/, "")}`);
  }
  lines.push(`  Carrier      ${carrier}`, `  Inspector    ${inspector}`, "");
  return lines.join("\n");
}

/** Reads one line from the terminal without echoing it (the key must not stay on the screen). */
async function readHiddenLine(question: string): Promise<string> {
  await Deno.stderr.write(new TextEncoder().encode(question));
  Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  try {
    const buf = new Uint8Array(256);
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      const chunk = buf.subarray(0, n);
      const end = chunk.findIndex((b) => b === 10 || b === 13 || b === 3 || b === 4);
      if (end >= 0 && chunk[end] === 3) throw new Error("cancelled");
      bytes.push(...(end >= 0 ? chunk.subarray(0, end) : chunk));
      if (end >= 0) break;
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(new TextEncoder().encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

async function login(args: string[]): Promise<void> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(`Saves the server, domain and key for hopgate-client http PORT.\n\nUsage: ${loginUsage}`);
    return;
  }
  try {
    const path = await runLogin({
      args,
      env: Deno.env.toObject(),
      readStdin: () =>
        Deno.stdin.isTerminal()
          ? readHiddenLine("Client API key: ")
          : new Response(Deno.stdin.readable).text(),
    });
    console.log(`Saved to ${path}; start a tunnel with: hopgate-client http 3000`);
  } catch (e) {
    exitOnConfigError(e, "hopgate-client login");
  }
}

async function main(): Promise<void> {
  if (Deno.args[0] === "login") return await login(Deno.args.slice(1));
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
        "hopgate-client http PORT|HOST:PORT|URL [options]\n       hopgate-client [options]\n       " +
          loginUsage,
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
  try {
    applyRecordCipher(config.recordCipher, logger);
    setUdpReceiveBuffer(UDP_RECEIVE_BUFFER);
  } catch (e) {
    console.error(`hopgate-client: ${(e as Error).message}`);
    Deno.exit(1);
  }
  const services = allServices(config);
  const abort = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, () => abort.abort());
  const caPem = await readCaFile(config.caFile);
  let announced = "";
  // The capture store is the forwarder's exchange observer (runTunnelClient → handleStream `observer`);
  // undefined when the inspector is off or could not listen, so nothing is captured for nobody.
  let inspector: CaptureStore | undefined;
  let inspectorAddress = "off";
  let inspectorServer: RunningInspector | undefined;
  if (config.inspectListen) {
    const store = createCaptureStore();
    const started = startInspector(config.inspectListen, store);
    if (typeof started === "string") {
      inspectorAddress = `unavailable: ${started}`;
      console.error(`hopgate-client: inspector not started: ${started}`);
      logger.warn({ component: "inspector", reason: started }, "inspector not started; going on without it");
    } else {
      inspector = store;
      inspectorServer = started;
      inspectorAddress = started.url;
    }
  }
  // One session per server address (lib/proxy/multi_client.ts).
  const current = new Map<TransportConnection, { id: string; carrier: "udp" | "tcp" }>();
  // prom-client loads only when metrics are served: unused, it is ~10 MB of the idle client (issue 13).
  let metrics: Metrics | undefined;
  let metricsServer: Deno.HttpServer | undefined;
  if (config.metricsListen) {
    const { createMetrics, serveMetrics } = await import("./lib/metrics/metrics.ts");
    metrics = createMetrics({
      sessions: () =>
        [...current].map(([connection, { id, carrier }]) => ({
          id,
          domain: config.domain,
          carrier,
          stats: connection.stats(),
        })),
    }, "hopgate_client_");
    metricsServer = serveMetrics(metrics, config.metricsListen);
  }
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
      transport: config.transport,
      caPem,
      serverName: config.serverName,
      udpReprobeMs: config.udpReprobeMs,
      observer: inspector,
      onConnected(publicUrl, sessionId, connection, carrier) {
        current.set(connection, { id: sessionId, carrier });
        connection.closed.then(() => current.delete(connection), () => current.delete(connection));
        if (!terminal) {
          logger.info({
            component: "client",
            public_url: publicUrl,
            local_targets: services.map((s) => `${s.prefix}=${s.target.href}`),
            carrier,
            inspector: inspectorAddress,
          }, "client ready");
          return;
        }
        if (announced === publicUrl) {
          console.log(`Reconnected over ${carrierName[carrier]} (session ${sessionId})`);
          return;
        }
        announced = publicUrl;
        console.log(banner(publicUrl, services, carrierName[carrier], inspectorAddress));
      },
      onRequest(r) {
        metrics?.observeRequest({
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
    if (e instanceof KeyRejectedError || e instanceof CarrierTrustError) {
      console.error(`hopgate-client: ${e.message}`);
      logger.error({ component: "tunnel", code: e.code }, e.message);
      Deno.exit(1);
    }
    throw e;
  }
  await metricsServer?.shutdown();
  await inspectorServer?.close();
  if (terminal) console.log("Stopped.");
  Deno.exit(0);
}

if (import.meta.main) await main();
