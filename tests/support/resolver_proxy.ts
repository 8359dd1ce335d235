/**
 * Test clients reach made-up host names (app.test) on loopback ports: an HTTP proxy that sends every
 * CONNECT (and absolute-form request) to 127.0.0.1 and the given port. TLS, SNI and certificate
 * checks stay end to end between the real client and the server.
 */

export interface ResolverProxy {
  url: string;
  /** A fetch client through the proxy, trusting `caPem`. */
  client(options?: { caPem?: string; http2?: boolean }): Deno.HttpClient;
  close(): void;
}

const encoder = new TextEncoder();

/** Starts the proxy; `portFor(host, port)` says which loopback port a request for host:port goes to. */
export function startResolverProxy(portFor: (host: string, port: number) => number): ResolverProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      handle(conn, portFor).catch(() => {}).finally(() => {
        conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
      });
    }
  })().catch(() => {});
  const url = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  const clients: Deno.HttpClient[] = [];
  return {
    url,
    client(options = {}) {
      const c = Deno.createHttpClient({
        proxy: { url },
        caCerts: options.caPem ? [options.caPem] : undefined,
        http1: options.http2 === true ? false : true,
        http2: options.http2 !== false,
      });
      clients.push(c);
      return c;
    },
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      for (const c of clients) c.close();
    },
  };
}

async function readHead(conn: Deno.Conn): Promise<{ head: string; rest: Uint8Array }> {
  const buf = new Uint8Array(16384);
  let n = 0;
  for (;;) {
    const r = await conn.read(buf.subarray(n));
    if (r === null) throw new Error("closed before a request head");
    n += r;
    const text = new TextDecoder().decode(buf.subarray(0, n));
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) return { head: text.slice(0, end), rest: buf.slice(end + 4, n) };
    if (n === buf.length) throw new Error("request head too large");
  }
}

async function handle(conn: Deno.Conn, portFor: (host: string, port: number) => number) {
  const { head, rest } = await readHead(conn);
  const [method, target] = head.split("\r\n")[0].split(" ");
  let upstream: Deno.Conn;
  if (method === "CONNECT") {
    const [host, port] = target.split(":");
    upstream = await Deno.connect({ hostname: "127.0.0.1", port: portFor(host, Number(port)) });
    await conn.write(encoder.encode("HTTP/1.1 200 Connection established\r\n\r\n"));
    if (rest.byteLength) await upstream.write(rest);
  } else {
    const u = new URL(target);
    upstream = await Deno.connect({ hostname: "127.0.0.1", port: portFor(u.hostname, Number(u.port || 80)) });
    const lines = head.split("\r\n");
    lines[0] = `${method} ${u.pathname}${u.search} ${lines[0].split(" ")[2]}`;
    await upstream.write(encoder.encode(lines.filter((l) => !/^proxy-/i.test(l)).join("\r\n") + "\r\n\r\n"));
    if (rest.byteLength) await upstream.write(rest);
  }
  await Promise.allSettled([
    conn.readable.pipeTo(upstream.writable),
    upstream.readable.pipeTo(conn.writable),
  ]);
}
