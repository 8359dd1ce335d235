/**
 * hopgate-server: configuration → database → certificates → listeners.
 * Prints one JSON line `server ready` with the bound addresses once it serves.
 */
import { Hono } from "hono";
import { exitOnConfigError } from "./lib/config/build.ts";
import { helpText } from "./lib/config/options.ts";
import { loadServerConfig, type ServerConfig, serverOptions } from "./lib/config/server_config.ts";
import { VERSION } from "./lib/config/version.ts";
import { captureConsole, createLogger, type Logger } from "./lib/log/logger.ts";
import { DatabaseError, openDatabase } from "./db/open.ts";
import { createDomainStore } from "./db/domains.ts";
import { createApiRoutes } from "./lib/admin/app.ts";
import { startDtlsServer } from "./lib/dtls/server.ts";
import { pskFromApiKey } from "./lib/dtls/psk.ts";
import { SessionRegistry } from "./lib/proxy/registry.ts";
import { createDomainLifecycle } from "./lib/proxy/domain_lifecycle.ts";
import { startDomainSync } from "./lib/proxy/domain_sync.ts";
import {
  clusterAdminHooks,
  type ClusterPresence,
  startClusterPresence,
} from "./lib/proxy/cluster_presence.ts";
import { createServerDirectory } from "./db/servers.ts";
import { acceptTunnel } from "./lib/proxy/tunnel_acceptor.ts";
import { createGateway } from "./lib/proxy/gateway.ts";
import { type Front, type FrontHandlers, startHttpFront, startHttpsFront } from "./lib/proxy/front.ts";
import { type CertificateStore, openSelfSignedStore } from "./lib/tls/certificate_store.ts";
import { type AcmeCertificateStore, openAcmeStore } from "./lib/tls/acme_store.ts";
import { errorResponse } from "./lib/pages/mod.ts";
import { createMetrics, serveMetrics } from "./lib/metrics/metrics.ts";

export interface RunningServer {
  shutdown(reason?: string): Promise<void>;
}

/** Shutdown lets in-flight requests finish for this long. */
const DRAIN_MS = 10_000;

function origin(scheme: "http" | "https", host: string, port: number): string {
  const standard = scheme === "https" ? 443 : 80;
  return `${scheme}://${host}${port === standard ? "" : `:${port}`}`;
}

/**
 * The plain HTTP listener when TLS is on: ACME's HTTP-01 path answers pending challenges, everything
 * else goes to HTTPS.
 */
function redirectToHttps(
  httpsPort: () => number,
  challenge?: (path: string) => Promise<string | undefined>,
): FrontHandlers {
  return {
    async fetch(request) {
      const url = new URL(request.url);
      if (url.pathname.startsWith("/.well-known/acme-challenge/")) {
        const keyAuthorization = await challenge?.(url.pathname);
        if (keyAuthorization !== undefined) {
          return new Response(keyAuthorization, { headers: { "content-type": "text/plain" } });
        }
        return errorResponse(
          404,
          "no_challenge",
          "No ACME challenge is pending here.",
          request,
          crypto.randomUUID(),
        );
      }
      const host = (request.headers.get("host") ?? url.hostname).replace(/:\d+$/, "");
      return new Response(null, {
        status: 308,
        headers: { location: `${origin("https", host, httpsPort())}${url.pathname}${url.search}` },
      });
    },
    upgrade(_request, socket) {
      socket.destroy();
    },
  };
}

async function readAcmeCa(file: string): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch (e) {
    throw new Error(`HOP_ACME_CA_FILE ${file} cannot be read: ${(e as Error).message} (give a PEM file)`);
  }
}

/** Starts every part of the server; resolves once it serves. */
export async function startServer(config: ServerConfig, logger: Logger): Promise<RunningServer> {
  const started = performance.now();
  const log = logger.child({ component: "server" });
  const database = await openDatabase({ dsn: config.dbDsn, dataDir: config.dataDir, logger });
  const store = createDomainStore(database.db);
  const serverId = crypto.randomUUID();
  const listed = await store.list();
  const domains = new Set(listed.map((d) => d.domain));
  const registry = new SessionRegistry();
  let certs: CertificateStore | undefined;
  let acme: AcmeCertificateStore | undefined;
  if (config.tlsMode === "acme") {
    certs = acme = await openAcmeStore({
      db: database.db,
      serverDomain: config.domain,
      isServedHost: (h) => domains.has(h),
      directoryUrl: config.acmeDirectoryUrl,
      email: config.acmeEmail,
      caPem: config.acmeCaFile ? await readAcmeCa(config.acmeCaFile) : undefined,
      dir: `${config.dataDir}/tls`,
      logger,
      onIssued: (hostname) => sync.certificateIssued(hostname),
    });
  } else if (config.tlsMode === "self-signed") {
    certs = await openSelfSignedStore({
      dir: `${config.dataDir}/tls`,
      serverDomain: config.domain,
      isServedHost: (h) => domains.has(h),
    });
  }
  let publicPort = 0;
  const publicUrl = (domain: string) =>
    origin(config.tlsMode === "off" ? "http" : "https", domain, publicPort);

  const dtls = await startDtlsServer({
    hostname: config.dtlsListen.hostname,
    port: config.dtlsListen.port,
    logger,
    async lookupPsk(identity) {
      if (!domains.has(identity)) return null;
      const key = await store.clientKey(identity);
      return key ? pskFromApiKey(key) : null;
    },
    onSession: (session) =>
      acceptTunnel(session, { registry, isRegistered: (d) => domains.has(d), publicUrl, logger }),
  });
  const lifecycle = createDomainLifecycle({
    domains,
    closeSessions: (domain, reason) => registry.closeDomain(domain, reason),
    closeCarriers: (domain, reason) => dtls.closeSessions(domain, reason),
    certificates: certs,
    acme,
    logger,
  }, listed);
  const sync = startDomainSync({ database, store, lifecycle, serverId, logger });
  const cluster: { presence?: ClusterPresence } = {};

  let stopping = false;
  const own = new Hono();
  own.get("/healthz", (c) => c.json({ status: "ok" }));
  own.get(
    "/readyz",
    (c) =>
      stopping
        ? c.json({ status: "stopping" }, 503)
        : c.json({ status: "ready", database: database.kind, sessions: registry.count() }),
  );
  own.route(
    "/api/v1",
    createApiRoutes({
      store,
      adminApiKey: config.adminApiKey,
      serverDomain: config.domain,
      logger,
      hooks: {
        ...(acme
          ? {
            certificate: (domain: string) => acme.state(domain),
            renewCertificate: (domain: string) => acme.renew(domain),
          }
          : {}),
        ...clusterAdminHooks({ registry, serverId, presence: () => cluster.presence, logger }),
        domainAdded: (domain) => sync.domainAdded(domain),
        domainChanged: (domain, change) => sync.domainChanged(domain, change),
      },
    }),
  );
  own.notFound((c) =>
    errorResponse(404, "not_found", `Nothing at ${c.req.path}.`, c.req.raw, crypto.randomUUID())
  );

  const metrics = createMetrics({
    sessions: () => registry.list().map((s) => ({ id: s.id, domain: s.domain, stats: s.connection.stats() })),
    handshakes: () => ({
      succeeded: dtls.stats().handshakesCompleted,
      failed: dtls.stats().handshakesFailed,
    }),
    certificates: acme ? () => acme.certificates() : undefined,
  });
  const metricsServer = config.metricsListen ? serveMetrics(metrics, config.metricsListen) : undefined;

  const gateway = createGateway({
    serverDomain: config.domain,
    ownApp: (request) => own.fetch(request),
    isRegistered: (d) => domains.has(d),
    registry,
    proxyTimeoutMs: config.proxyTimeoutMs,
    logger,
    onRequestDone: (r) => metrics.observeRequest(r),
  });

  const fronts: Front[] = [];
  let https: Front | undefined;
  if (certs) {
    const store = certs;
    https = await startHttpsFront({
      listen: config.httpsListen,
      defaultCert: store.defaultPair(),
      sni: (name) => store.contextFor(name),
      handlers: gateway,
    });
    fronts.push(https);
    publicPort = https.addr.port;
    fronts.push(
      await startHttpFront(config.httpListen, redirectToHttps(() => publicPort, acme?.challengeResponse)),
    );
  } else {
    const http = await startHttpFront(config.httpListen, gateway);
    fronts.push(http);
    publicPort = http.addr.port;
  }
  const [first, second] = fronts;
  const http = certs ? second : first;

  cluster.presence = startClusterPresence({
    directory: createServerDirectory(database.db, serverId),
    serverId,
    registry,
    version: VERSION,
    logger,
    addresses: () => ({
      http: `${http.addr.hostname}:${http.addr.port}`,
      ...(https ? { https: `${https.addr.hostname}:${https.addr.port}` } : {}),
      dtls: `${dtls.addr.hostname}:${dtls.addr.port}`,
    }),
  });

  log.info({
    version: VERSION,
    server_id: serverId,
    domain: config.domain,
    http: `${http.addr.hostname}:${http.addr.port}`,
    https: https ? `${https.addr.hostname}:${https.addr.port}` : null,
    dtls: `${dtls.addr.hostname}:${dtls.addr.port}`,
    metrics: metricsServer ? `${metricsServer.addr.hostname}:${metricsServer.addr.port}` : null,
    tls_mode: config.tlsMode,
    database: database.kind,
    domains: domains.size,
    ca: config.tlsMode === "self-signed" ? `${config.dataDir}/tls/ca.crt` : null,
    startup_ms: Math.round(performance.now() - started),
  }, "server ready");

  // Orders run in the background once the HTTP listener can answer their challenges.
  acme?.start(domains);

  let stopped: Promise<void> | undefined;
  return {
    shutdown(reason = "shutdown") {
      stopped ??= (async () => {
        stopping = true;
        acme?.close();
        await sync.close();
        log.info({ reason, in_flight: gateway.inFlight() }, "server stopping");
        const closing = fronts.map((f) => f.close());
        await gateway.drained(DRAIN_MS);
        await registry.closeAll("the server is shutting down");
        await cluster.presence?.close();
        await dtls.close();
        for (const f of fronts) f.destroyConnections();
        await Promise.all(closing);
        await metricsServer?.shutdown();
        await database.close();
        log.info({}, "server stopped");
      })();
      return stopped;
    },
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
