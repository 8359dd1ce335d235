/**
 * A local origin for the tunnel end-to-end tests, on 127.0.0.1 and a port of its own: every route a
 * scenario needs (slow answers, hangs, repeated Set-Cookie, seeded bodies generated on the fly, SSE
 * released step by step by the test, WebSocket echo with close codes, a header mirror).
 */
import { createHash } from "node:crypto";
import { sleep } from "./wait.ts";

/** Bytes per generated chunk. */
const CHUNK = 64 * 1024;

/**
 * `size` pseudo-random bytes from `seed` (xorshift32), produced as the reader pulls: the same seed
 * and size always give the same bytes, and nothing is held whole.
 */
export function seededStream(size: number, seed: number): ReadableStream<Uint8Array> {
  let state = (seed >>> 0) || 0x9e3779b9;
  let left = size;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (left <= 0) {
        controller.close();
        return;
      }
      const n = Math.min(CHUNK, left);
      const words = new Uint32Array(Math.ceil(n / 4));
      let x = state;
      for (let i = 0; i < words.length; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        words[i] = x;
      }
      state = x >>> 0;
      left -= n;
      controller.enqueue(new Uint8Array(words.buffer, 0, n));
    },
  }, { highWaterMark: 0 });
}

/** SHA-256 (hex) and length of a stream, read chunk by chunk. */
export async function hashStream(
  body: ReadableStream<Uint8Array>,
): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of body) {
    hash.update(chunk);
    bytes += chunk.byteLength;
  }
  return { sha256: hash.digest("hex"), bytes };
}

/** The SHA-256 of seededStream(size, seed). */
export function seededHash(size: number, seed: number): Promise<string> {
  return hashStream(seededStream(size, seed)).then((h) => h.sha256);
}

export interface Origin {
  port: number;
  /** host:port for HOP_CLIENT_LOCAL_TARGET. */
  target: string;
  /** The tag this origin answers /who with. */
  tag: string;
  /** Requests seen, by path. */
  hits: Map<string, number>;
  /** Headers of the last request to /headers. */
  lastHeaders?: Record<string, string>;
  /** Lets the SSE stream of /sse send its next event; resolves when the origin has written it. */
  sseNext(): void;
  /** Times (performance.now) at which /sse wrote each event. */
  sseSent: number[];
  /** Requests currently being answered by /slow or /hang. */
  pending(): number;
  close(): Promise<void>;
}

/** Starts the origin. */
export function startOrigin(tag = "origin"): Origin {
  const hits = new Map<string, number>();
  let sseWaiters: (() => void)[] = [];
  let sseCredits = 0;
  const sseSent: number[] = [];
  let pending = 0;
  const sockets = new Set<WebSocket>();
  const sseGate = () =>
    new Promise<void>((resolve) => {
      if (sseCredits > 0) {
        sseCredits--;
        resolve();
      } else sseWaiters.push(resolve);
    });
  const origin: Origin = {
    port: 0,
    target: "",
    tag,
    hits,
    sseSent,
    sseNext() {
      const w = sseWaiters.shift();
      if (w) w();
      else sseCredits++;
    },
    pending: () => pending,
    close: async () => {
      for (const s of sockets) {
        try {
          s.close();
        } catch { /* closed */ }
      }
      sseWaiters.forEach((w) => w());
      sseWaiters = [];
      await server.shutdown();
    },
  };

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const q = (name: string, d: number) => Number(url.searchParams.get(name) ?? d);
    switch (path) {
      case "/who":
        return new Response(tag, { headers: { "x-origin": tag } });
      case "/method": {
        const body = req.body ? await req.text() : "";
        return Response.json({ method: req.method, body, query: url.search });
      }
      case "/echo":
        return new Response(req.body, {
          headers: { "content-type": req.headers.get("content-type") ?? "application/octet-stream" },
        });
      case "/upload": {
        const { sha256, bytes } = await hashStream(req.body ?? new Response("").body!);
        return Response.json({ sha256, bytes });
      }
      case "/download":
        return new Response(seededStream(q("size", 1024), q("seed", 1)), {
          headers: { "content-type": "application/octet-stream", "content-length": String(q("size", 1024)) },
        });
      case "/slow": {
        pending++;
        try {
          await sleep(q("ms", 1000));
        } finally {
          pending--;
        }
        return new Response(`slow ${q("ms", 1000)}`);
      }
      case "/slowbody": {
        // The head at once, the body's end after `ms`.
        const ms = q("ms", 1000);
        pending++;
        const body = new ReadableStream<Uint8Array>({
          async start(c) {
            c.enqueue(new TextEncoder().encode("first part\n"));
            await sleep(ms);
            try {
              c.enqueue(new TextEncoder().encode("second part\n"));
              c.close();
            } catch { /* cancelled */ }
            pending--;
          },
        });
        return new Response(body);
      }
      case "/hang":
        pending++;
        await new Promise<void>((resolve) => req.signal.addEventListener("abort", () => resolve()));
        pending--;
        return new Response("too late");
      case "/cookies": {
        const h = new Headers({ "content-type": "text/plain" });
        h.append("set-cookie", "a=1; Path=/");
        h.append("set-cookie", "b=2; Path=/; HttpOnly");
        h.append("set-cookie", "c=3, with comma; Path=/");
        return new Response("cookies", { headers: h });
      }
      case "/headers": {
        const seen: Record<string, string> = {};
        req.headers.forEach((v, k) => (seen[k] = v));
        origin.lastHeaders = seen;
        return Response.json(seen);
      }
      case "/nocontent":
        return new Response(null, { status: 204, headers: { "x-kind": "nocontent" } });
      case "/etag":
        if (req.headers.get("if-none-match") === '"v1"') {
          return new Response(null, { status: 304, headers: { etag: '"v1"' } });
        }
        return new Response("versioned body", { headers: { etag: '"v1"' } });
      case "/sse": {
        const n = q("n", 3);
        const enc = new TextEncoder();
        const body = new ReadableStream<Uint8Array>({
          async start(c) {
            for (let i = 1; i <= n; i++) {
              if (i > 1) await sseGate();
              try {
                c.enqueue(enc.encode(`id: ${i}\nevent: tick\ndata: event ${i}\n\n`));
              } catch {
                return;
              }
              sseSent.push(performance.now());
            }
            c.close();
          },
        });
        return new Response(body, {
          headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
        });
      }
      case "/ws": {
        if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
          return new Response("websocket only", { status: 426 });
        }
        const { socket, response } = Deno.upgradeWebSocket(req);
        sockets.add(socket);
        socket.onclose = () => sockets.delete(socket);
        socket.onmessage = (e) => {
          if (typeof e.data === "string" && e.data.startsWith("close:")) {
            const [, code, reason] = e.data.split(":");
            socket.close(Number(code), reason);
            return;
          }
          socket.send(e.data);
        };
        return response;
      }
      default:
        return new Response(`hello from ${tag} at ${path}`, { headers: { "content-type": "text/plain" } });
    }
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handle);
  origin.port = server.addr.port;
  origin.target = `127.0.0.1:${server.addr.port}`;
  return origin;
}
