/**
 * Reference row: a one-hop reverse proxy in plain Deno (`Deno.serve` + `fetch`, bodies streamed both
 * ways), what a single JavaScript proxy hop costs on this machine. Prints one JSON line
 * `{"proxy":"ready","port":N}` once it listens.
 *
 *   deno run -A scripts/bench/deno_proxy.ts <origin port> [listen port, default 0 = any free port]
 */

/** Forwards one request to the origin, method, headers and body as they came; the answer as it comes. */
export function forward(origin: URL, request: Request): Promise<Response> {
  const url = new URL(request.url);
  url.protocol = origin.protocol;
  url.host = origin.host;
  return fetch(url, {
    method: request.method,
    headers: request.headers,
    body: request.body,
    redirect: "manual",
  });
}

if (import.meta.main) {
  const originPort = Number(Deno.args[0]);
  if (!Number.isInteger(originPort) || originPort <= 0) {
    console.error("usage: deno_proxy.ts <origin port> [listen port]: the origin port must be a port number");
    Deno.exit(2);
  }
  const origin = new URL(`http://127.0.0.1:${originPort}`);
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: Number(Deno.args[1] ?? 0),
    onListen: (addr) => console.log(JSON.stringify({ proxy: "ready", port: addr.port })),
  }, (request) => forward(origin, request));
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => server.shutdown().finally(() => Deno.exit(0)));
  }
}
