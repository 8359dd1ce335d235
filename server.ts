/**
 * hopgate-server: configuration → database → listeners.
 * Prints one JSON line `server ready` with the bound addresses once it serves.
 */
import { Hono } from "hono";
import { exitOnConfigError } from "./lib/config/build.ts";
import { helpText } from "./lib/config/options.ts";
import { loadServerConfig, type ServerConfig, serverOptions } from "./lib/config/server_config.ts";
import { VERSION } from "./lib/config/version.ts";
import { createLogger, type Logger } from "./lib/log/logger.ts";
import { type Database, DatabaseError, openDatabase } from "./db/open.ts";
import { createDomainStore } from "./db/domains.ts";
import { createApiRoutes } from "./lib/admin/app.ts";

export interface RunningServer {
  http: Deno.NetAddr;
  shutdown(reason?: string): Promise<void>;
}

/** Starts every part of the server; resolves once it serves. */
export async function startServer(config: ServerConfig, logger: Logger): Promise<RunningServer> {
  const started = performance.now();
  const database: Database = await openDatabase({ dsn: config.dbDsn, dataDir: config.dataDir, logger });
  const store = createDomainStore(database.db);
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", (c) => c.json({ status: "ready", database: database.kind }));
  app.route(
    "/api/v1",
    createApiRoutes({ store, adminApiKey: config.adminApiKey, serverDomain: config.domain, logger }),
  );

  const http = Deno.serve({
    hostname: config.httpListen.hostname,
    port: config.httpListen.port,
    onListen: () => {},
  }, app.fetch);
  const addr = http.addr as Deno.NetAddr;
  logger.info({
    component: "server",
    version: VERSION,
    domain: config.domain,
    http: `${addr.hostname}:${addr.port}`,
    database: database.kind,
    startup_ms: Math.round(performance.now() - started),
  }, "server ready");

  let stopping: Promise<void> | undefined;
  return {
    http: addr,
    shutdown(reason = "shutdown") {
      stopping ??= (async () => {
        logger.info({ component: "server", reason }, "server stopping");
        await http.shutdown();
        await database.close();
      })();
      return stopping;
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
  let server: RunningServer;
  try {
    server = await startServer(config, logger);
  } catch (e) {
    if (e instanceof DatabaseError) {
      logger.error({ component: "server", code: e.code }, e.message);
      console.error(`hopgate-server: ${e.message}`);
      Deno.exit(1);
    }
    throw e;
  }
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      server.shutdown(signal).then(() => Deno.exit(0));
    });
  }
}

if (import.meta.main) await main();
