/**
 * hopgate-server: configuration → database → certificates → listeners.
 * Prints one JSON line `server ready` with the bound addresses once it serves.
 * Each start-up step is a function of its own under lib/server/; `startServer` lists them in order.
 */
import { exitOnConfigError } from "./lib/config/build.ts";
import { helpText } from "./lib/config/options.ts";
import { loadServerConfig, type ServerConfig, serverOptions } from "./lib/config/server_config.ts";
import { VERSION } from "./lib/config/version.ts";
import { captureConsole, createLogger, type Logger } from "./lib/log/logger.ts";
import { DatabaseError } from "./db/open.ts";
import { applyRecordCipher } from "./lib/dtls/aead.ts";
import { setUdpReceiveBuffer, UDP_RECEIVE_BUFFER } from "./lib/dtls/udp_buffer.ts";
import { SessionRegistry } from "./lib/proxy/registry.ts";
import { openStorage } from "./lib/server/database.ts";
import { openCertificates } from "./lib/server/certificates.ts";
import { publicOrigin } from "./lib/server/public_origin.ts";
import { startTunnelEndpoints } from "./lib/server/tunnels.ts";
import { startDomains } from "./lib/server/domains.ts";
import { createOwnApp } from "./lib/server/own_app.ts";
import { startMetrics } from "./lib/server/metrics.ts";
import { type ClusterSlot, peerForwarding, startPresence } from "./lib/server/cluster.ts";
import { createServerGateway, startFronts } from "./lib/server/fronts.ts";
import { logReady } from "./lib/server/ready.ts";
import { shutdownSequence } from "./lib/server/shutdown.ts";

export interface RunningServer {
  shutdown(reason?: string): Promise<void>;
}

/** Starts every part of the server; resolves once it serves. */
export async function startServer(config: ServerConfig, logger: Logger): Promise<RunningServer> {
  const started = performance.now();
  const storage = await openStorage(config, logger);
  const { database, domains } = storage;
  const serverId = crypto.randomUUID();
  const registry = new SessionRegistry();
  const certificates = await openCertificates(config, {
    database,
    domains,
    // Orders start at the end (`acme.start`), after the domain sync exists.
    onIssued: (hostname) => domainParts.sync.certificateIssued(hostname),
    logger,
  });
  const origin = publicOrigin(config.tlsMode);
  const tunnels = await startTunnelEndpoints(config, {
    store: storage.store,
    domains,
    registry,
    publicOrigin: origin,
    logger,
  });
  const { dtls } = tunnels;
  const domainParts = await startDomains({ storage, certificates, registry, dtls, serverId, logger });
  const cluster: ClusterSlot = {};
  const ownApp = createOwnApp(config, {
    storage,
    certificates,
    policyStore: domainParts.policyStore,
    sync: domainParts.sync,
    registry,
    serverId,
    presence: () => cluster.presence,
    logger,
  });
  const metrics = startMetrics(config, { registry, dtls, authGuard: ownApp.authGuard, certificates });
  const peers = peerForwarding(config, storage.secret, serverId, cluster);
  const gateway = createServerGateway(config, {
    domains,
    ownApp,
    policies: domainParts.policies,
    peers,
    metrics: metrics.metrics,
    registry,
    logger,
  });
  const fronts = await startFronts(config, {
    gateway,
    certificates,
    tunnels,
    domains,
    peers,
    publicOrigin: origin,
    logger,
  });
  cluster.presence = startPresence({ database, serverId, registry, fronts, dtls, logger });
  logReady(config, logger, { serverId, storage, fronts, dtls, metrics, started });
  // Orders run in the background once the HTTP listener can answer their challenges.
  certificates.acme?.start(domains);
  return {
    shutdown: shutdownSequence({
      storage,
      certificates,
      registry,
      dtls,
      domains: domainParts,
      ownApp,
      metrics,
      gateway,
      fronts,
      cluster,
      logger,
    }),
  };
}

async function main(): Promise<void> {
  let built;
  try {
    built = loadServerConfig({ args: Deno.args, env: Deno.env.toObject() });
  } catch (e) {
    exitOnConfigError(e, "hopgate-server");
  }
  if (built.help) {
    console.log(
      helpText(
        `hopgate-server ${VERSION}: the public side of a HopGate tunnel`,
        "hopgate-server [options]",
        serverOptions,
      ),
    );
    return;
  }
  if (built.version) {
    console.log(`hopgate-server ${VERSION}`);
    return;
  }
  const config = built.config;
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  captureConsole(logger);
  let server: RunningServer;
  try {
    applyRecordCipher(config.recordCipher, logger);
    setUdpReceiveBuffer(UDP_RECEIVE_BUFFER);
    server = await startServer(config, logger);
  } catch (e) {
    const message = e instanceof DatabaseError ? e.message : `start-up failed: ${(e as Error).message}`;
    logger.error({ component: "server", code: (e as { code?: string }).code }, message);
    Deno.stderr.writeSync(new TextEncoder().encode(`hopgate-server: ${message}\n`));
    Deno.exit(1);
  }
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      server.shutdown(signal).then(() => Deno.exit(0));
    });
  }
}

if (import.meta.main) await main();
