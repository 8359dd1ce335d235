/**
 * hopgate-server: configuration → database → certificates → listeners.
 * Prints one JSON line `server ready` with the bound addresses once it serves.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type tls from "node:tls";
import { Hono } from "hono";
import { exitOnConfigError } from "./lib/config/build.ts";
import { helpText } from "./lib/config/options.ts";
import { loadServerConfig, type ServerConfig, serverOptions } from "./lib/config/server_config.ts";
import { VERSION } from "./lib/config/version.ts";
import { captureConsole, createLogger, type Logger } from "./lib/log/logger.ts";
import { DatabaseError, openDatabase } from "./db/open.ts";
import { createDomainStore } from "./db/domains.ts";
import { createPolicyStore } from "./db/policies.ts";
import { restrictUmask, secureTree } from "./db/data_dir.ts";
import { createKeySealer } from "./db/key_seal.ts";
import { loadServerSecret } from "./db/secret.ts";
import { createAuthGuard } from "./lib/admin/auth_guard.ts";
import { createApiRoutes } from "./lib/admin/app.ts";
import { startDtlsServer } from "./lib/dtls/server.ts";
import { pskFromApiKey } from "./lib/dtls/psk.ts";
import { SessionRegistry } from "./lib/proxy/registry.ts";
import { acceptTcpTunnel, acceptTunnel } from "./lib/proxy/tunnel_acceptor.ts";
import { startTunnelTlsListener, type TunnelTlsListener } from "./lib/proxy/tunnel_tls_listener.ts";
import { createGateway } from "./lib/proxy/gateway.ts";
import { type Front, type FrontHandler, startHttpFront, startHttpsFront } from "./lib/proxy/front.ts";
import { serveWeb } from "./lib/proxy/web_bridge.ts";
import { createPolicyBook } from "./lib/proxy/policy_book.ts";
import { cidrContains, parseIp } from "./lib/config/cidr.ts";
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
 * The plain HTTP listener when TLS is on: ACME's HTTP-01 path answers pending challenges, requests for
 * hosts this server serves go to HTTPS, anything else gets the 404 page.
 */
function redirectToHttps(
  httpsPort: () => number,
  isKnownHost: (host: string) => boolean,
  challenge?: (path: string) => Promise<string | undefined>,
): FrontHandler {
  const app = async (request: Request): Promise<Response> => {
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
    const host = (request.headers.get("host") ?? url.hostname).replace(/:\d+$/, "").toLowerCase()
      .replace(/\.$/, "");
    // Only hosts this server serves: a redirect must not send a visitor wherever the Host header says.
    if (!isKnownHost(host)) {
      return errorResponse(
        404,
        "unknown_host",
        "This host is not served by this HopGate server.",
        request,
        crypto.randomUUID(),
      );
    }
    return new Response(null, {
      status: 308,
      headers: { location: `${origin("https", host, httpsPort())}${url.pathname}${url.search}` },
    });
  };
  return (req, res) => void serveWeb(req, res, app);
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
  // Owner-only from here on (the embedded database, TLS keys, the secret), and existing files fixed.
  restrictUmask();
  await secureTree(config.dataDir);
  const database = await openDatabase({ dsn: config.dbDsn, dataDir: config.dataDir, logger });
  let store;
  try {
    const secret = await loadServerSecret({
      secretKeyHex: config.secretKey,
      dataDir: config.dataDir,
      dsn: config.dbDsn,
    });
    store = createDomainStore(database.db, createKeySealer(secret));
    const sealed = await store.sealLegacyKeys();
    if (sealed > 0) log.info({ sealed }, "client keys sealed at rest");
  } catch (e) {
    await database.close().catch(() => {});
    throw e;
  }
  const domains = new Set((await store.list()).map((d) => d.domain));
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

  const lookupPsk = async (identity: string) => {
    if (!domains.has(identity)) return null;
    const key = await store.clientKey(identity);
    return key ? pskFromApiKey(key) : null;
  };
  const dtls = await startDtlsServer({
    hostname: config.dtlsListen.hostname,
    port: config.dtlsListen.port,
    logger,
    lookupPsk,
    onSession: (session) =>
      acceptTunnel(session, { registry, isRegistered: (d) => domains.has(d), publicUrl, logger }),
  });

  const policyStore = createPolicyStore(database.db);
  const policies = await createPolicyBook(policyStore, { logger });

  // The admin API rate-limits by peer address, which only the front knows: carried in async context.
  const peer = new AsyncLocalStorage<string>();
  const authGuard = createAuthGuard({ logger });

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
      policies: policyStore,
      adminApiKey: config.adminApiKey,
      serverDomain: config.domain,
      logger,
      guard: authGuard,
      clientAddress: () => peer.getStore() ?? "",
      hooks: {
        ...(acme
          ? {
            certificate: (domain: string) => acme.state(domain),
            renewCertificate: (domain: string) => acme.renew(domain),
          }
          : {}),
        sessions: (domain) =>
          registry.list(domain).map((s) => ({
            id: s.id,
            remote_address: s.remoteAddress,
            connected_since: s.connectedAt.toISOString(),
            requests_served: s.requestsServed,
            carrier: s.carrier ?? "udp",
          })),
        async domainAdded(domain) {
          domains.add(domain);
          await acme?.added(domain);
        },
        async domainChanged(domain, change) {
          const reason = change === "removed"
            ? "the domain was removed on the server"
            : "the client key was rotated";
          if (change === "removed") {
            domains.delete(domain);
            await certs?.forget(domain);
          }
          const closed = await registry.closeDomain(domain, reason);
          dtls.closeSessions(domain, reason);
          log.info({ domain, change, sessions_closed: closed }, "domain changed");
        },
      },
    }),
  );
  own.notFound((c) =>
    errorResponse(404, "not_found", `Nothing at ${c.req.path}.`, c.req.raw, crypto.randomUUID())
  );

  const metrics = createMetrics({
    sessions: () =>
      registry.list().map((s) => ({
        id: s.id,
        domain: s.domain,
        carrier: s.carrier ?? "udp",
        stats: s.connection.stats(),
      })),
    handshakes: () => ({
      succeeded: dtls.stats().handshakesCompleted,
      failed: dtls.stats().handshakesFailed,
      rateLimited: dtls.stats().handshakesRateLimited,
      evicted: dtls.stats().handshakesEvicted,
    }),
    adminAuth: () => authGuard.stats(),
    certificates: acme ? () => acme.certificates() : undefined,
  });
  const metricsServer = config.metricsListen ? serveMetrics(metrics, config.metricsListen) : undefined;

  const trusted = config.trustedProxies;
  const gateway = createGateway({
    serverDomain: config.domain,
    // localhost and IP literals reach the admin API only where no public name is served (dev, tests).
    ownAddressHosts: config.tlsMode === "self-signed" || config.debug,
    ownApp: (request, remoteAddr) => peer.run(remoteAddr, () => own.fetch(request)),
    isRegistered: (d) => domains.has(d),
    isTrustedProxy: trusted.length === 0 ? undefined : (address) => {
      const ip = parseIp(address);
      return ip !== null && trusted.some((c) => cidrContains(c, ip));
    },
    policy: (domain) => policies.get(domain),
    onPolicyDenied: (domain, reason) => metrics.observePolicyDenial(domain, reason),
    hsts: (domain) => config.tlsMode === "acme" && domains.has(domain),
    registry,
    proxyTimeoutMs: config.proxyTimeoutMs,
    logger,
    onRequestDone: (r) => metrics.observeRequest(r),
  });

  /** The TCP carrier's entry: sockets that negotiated ALPN "hopgate/1" (issue 12). */
  const onTunnelSocket = (socket: tls.TLSSocket) =>
    acceptTcpTunnel(socket, { registry, isRegistered: (d) => domains.has(d), publicUrl, logger, lookupPsk });
  const fronts: Front[] = [];
  let https: Front | undefined;
  let tunnelTls: TunnelTlsListener | undefined;
  if (certs) {
    const store = certs;
    https = await startHttpsFront({
      listen: config.httpsListen,
      defaultCert: store.defaultPair(),
      sni: (name) => store.contextFor(name),
      handler: gateway.handle,
      onTunnelSocket,
      logger,
    });
    fronts.push(https);
    publicPort = https.addr.port;
    // Clients dial the TCP carrier on the DTLS port number: the HTTPS front takes it (ALPN
    // "hopgate/1") when both share a port, as the defaults do; otherwise a TLS listener of its own.
    if (dtls.addr.port !== https.addr.port) {
      const own = store;
      tunnelTls = await startTunnelTlsListener({
        listen: { hostname: config.dtlsListen.hostname, port: dtls.addr.port },
        defaultCert: own.defaultPair(),
        sni: (name) => own.contextFor(name),
        onTunnelSocket,
      }).catch((e) => {
        log.warn({ err: (e as Error).message }, "TCP carrier listener not started");
        return undefined;
      });
    }
    fronts.push(
      await startHttpFront({
        listen: config.httpListen,
        handler: redirectToHttps(
          () => publicPort,
          (h) => h === config.domain || domains.has(h),
          acme?.challengeResponse,
        ),
        logger,
      }),
    );
  } else {
    const http = await startHttpFront({ listen: config.httpListen, handler: gateway.handle, logger });
    fronts.push(http);
    publicPort = http.addr.port;
  }
  const [first, second] = fronts;
  const http = certs ? second : first;

  log.info({
    version: VERSION,
    domain: config.domain,
    http: `${http.addr.hostname}:${http.addr.port}`,
    https: https ? `${https.addr.hostname}:${https.addr.port}` : null,
    dtls: `${dtls.addr.hostname}:${dtls.addr.port}`,
    tunnel_tcp: tunnelTls ? `${tunnelTls.addr.hostname}:${tunnelTls.addr.port}` : null,
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
        log.info({ reason, in_flight: gateway.inFlight() }, "server stopping");
        const closing = fronts.map((f) => f.close());
        await gateway.drained(DRAIN_MS);
        await registry.closeAll("the server is shutting down");
        await dtls.close();
        await tunnelTls?.close();
        for (const f of fronts) f.destroyConnections();
        await Promise.all(closing);
        policies.close();
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
