/** Starts the inspector's listener; a port already in use is reported, not fatal. */
import type { ListenAddress } from "../config/values.ts";
import type { CaptureStore } from "./capture.ts";
import type { InspectorApp } from "./app.ts";

export interface RunningInspector {
  /** http://host:port */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Serves the inspector on `listen`; returns why not (a sentence) when the address is taken or refused. */
export function startInspector(listen: ListenAddress, store: CaptureStore): RunningInspector | string {
  // The app (Hono, zod, the page) loads on the first request: a client nobody inspects stays
  // ~10 MB smaller (issue 13: the client's idle RSS).
  let loaded: Promise<InspectorApp> | undefined;
  let app: InspectorApp | undefined;
  const load = () =>
    loaded ??= import("./app.ts").then(({ createInspectorApp }) => app = createInspectorApp(store));
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve(
      { hostname: listen.hostname || "127.0.0.1", port: listen.port, onListen() {} },
      async (request, info) => (app ?? await load()).app.fetch(request, info),
    );
  } catch (e) {
    const where = `${listen.hostname}:${listen.port}`;
    if (e instanceof Deno.errors.AddrInUse) {
      return `${where} is already in use (another client?); set HOP_CLIENT_INSPECT_LISTEN=127.0.0.1:4041 or off`;
    }
    return `cannot listen on ${where}: ${(e as Error).message}`;
  }
  const host = server.addr.hostname.includes(":") ? `[${server.addr.hostname}]` : server.addr.hostname;
  return {
    url: `http://${host}:${server.addr.port}`,
    port: server.addr.port,
    async close() {
      app?.closeStreams();
      await server.shutdown();
    },
  };
}
