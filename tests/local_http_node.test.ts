/** The local HTTP client against a real node:http service: keep-alive, undecoded bodies, big heads, trailers, flow control. */
import http from "node:http";
import https from "node:https";
import { gzipSync } from "node:zlib";
import { WebSocketServer } from "ws";
import type { ByteSink } from "../lib/protocol/body.ts";
import { closeLocalConnections, sendLocal } from "../lib/proxy/local_http.ts";
import { assert, assertEquals } from "./support/assert.ts";
import {
  bytes,
  chunkSource,
  concat,
  generatedSource,
  latin1,
  request,
  throttledSink,
  upgradeRequest,
} from "./support/local_http.ts";
import { eventually } from "./support/wait.ts";
import { testCert } from "./support/front_fixture.ts";

async function nodeOrigin(
  handler: http.RequestListener,
  server: http.Server | https.Server = http.createServer(),
): Promise<{ url: URL; connections: () => number; close(): Promise<void> }> {
  let connections = 0;
  server.on("connection", () => connections++);
  server.on("request", handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const scheme = server instanceof https.Server ? "https" : "http";
  return {
    url: new URL(`${scheme}://127.0.0.1:${port}`),
    connections: () => connections,
    close: () =>
      new Promise<void>((r) => {
        closeLocalConnections();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

Deno.test("many sequential requests reuse one kept-alive connection", async () => {
  const origin = await nodeOrigin((_req, res) => res.end("ok"));
  try {
    for (let i = 0; i < 50; i++) {
      const res = await request(origin.url, { target: `/n/${i}`, headers: [["Host", "h"]] });
      assertEquals(latin1(res.body), "ok");
    }
    assertEquals(origin.connections(), 1);
  } finally {
    await origin.close();
  }
});

Deno.test("a gzip body passes undecoded with its Content-Encoding, whatever Accept-Encoding said", async () => {
  const plain = bytes("compressible ".repeat(2000));
  const gz = gzipSync(plain);
  const origin = await nodeOrigin((_req, res) => {
    res.writeHead(200, { "Content-Encoding": "gzip", "Content-Type": "text/plain" });
    res.end(gz);
  });
  try {
    for (const ae of [["gzip"], ["identity"], [], ["gzip, deflate, br, zstd"]]) {
      const res = await request(origin.url, {
        target: "/asset.txt",
        headers: ae.length ? [["Host", "h"], ["Accept-Encoding", ae[0]]] : [["Host", "h"]],
      });
      assertEquals(res.headers.find(([n]) => n.toLowerCase() === "content-encoding")?.[1], "gzip");
      assertEquals(res.body, new Uint8Array(gz), `body for Accept-Encoding ${ae[0] ?? "(none)"}`);
    }
  } finally {
    await origin.close();
  }
});

Deno.test("a 256 KiB response head of 200 Set-Cookie lines passes whole", async () => {
  const cookies = Array.from({ length: 200 }, (_, i) => `c${i}=${"v".repeat(1300)}; Path=/`);
  const origin = await nodeOrigin((_req, res) => {
    res.setHeader("Set-Cookie", cookies);
    res.end("ok");
  });
  try {
    const res = await request(origin.url, { target: "/", headers: [["Host", "h"]] });
    const got = res.headers.filter(([n]) => n.toLowerCase() === "set-cookie").map(([, v]) => v);
    assertEquals(got.length, 200);
    assertEquals(got, cookies);
  } finally {
    await origin.close();
  }
});

Deno.test("trailers pass both ways with a node:http service", async () => {
  const origin = await nodeOrigin((req, res) => {
    const chunks: Uint8Array[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      res.writeHead(200, { Trailer: "X-Echo-Trailer" });
      res.write(concat(chunks));
      res.addTrailers([["X-Echo-Trailer", String(req.rawTrailers)], ["grpc-status", "0"]]);
      res.end();
    });
  });
  try {
    const res = await request(origin.url, {
      method: "POST",
      target: "/echo",
      headers: [["Host", "h"], ["Trailer", "X-Sum"]],
      body: chunkSource([bytes("body")], [["X-Sum", "42"]]),
    });
    assertEquals(latin1(res.body), "body");
    assertEquals(res.trailers, [["X-Echo-Trailer", "X-Sum,42"], ["grpc-status", "0"]]);
  } finally {
    await origin.close();
  }
});

Deno.test("abort() mid-body destroys the local request: the service sees its answer cut", async () => {
  let resolveCut!: (finished: boolean) => void;
  const cut = new Promise<boolean>((resolve) => resolveCut = resolve);
  const origin = await nodeOrigin((_req, res) => {
    res.write("first");
    const timer = setInterval(() => res.write("more"), 20);
    res.on("close", () => {
      clearInterval(timer);
      resolveCut(res.writableFinished);
    });
  });
  try {
    let aborted: Error | null = null;
    const exchange = sendLocal(origin.url, {
      method: "GET",
      target: "/slow",
      headers: [["Host", "h"]],
      body: null,
      protocol: "h1",
    }, {
      head(): ByteSink {
        return {
          write: () => {
            queueMicrotask(() => exchange.abort(new Error("tunnel stream reset")));
            return true;
          },
          onDrain() {},
          end: () => {
            throw new Error("the body must not end");
          },
          abort: (e) => void (aborted = e ?? null),
        };
      },
      upgraded() {},
      error: (e) => {
        throw e;
      },
    });
    assertEquals(await cut, false, "the service's response was cut before it finished");
    assert(aborted, "the sink handed out is aborted");
  } finally {
    await origin.close();
  }
});

const MB = 1024 * 1024;

Deno.test("a 20 MB download follows the sink's backpressure (bounded queue at the sink)", async () => {
  const total = 20 * MB;
  const origin = await nodeOrigin((_req, res) => {
    res.writeHead(200, { "Content-Length": String(total) });
    const chunk = new Uint8Array(64 * 1024).fill(7);
    let written = 0;
    const pump = () => {
      while (written < total) {
        written += chunk.length;
        if (!res.write(chunk)) return void res.once("drain", pump);
      }
      res.end();
    };
    pump();
  });
  try {
    const slow = throttledSink();
    sendLocal(origin.url, {
      method: "GET",
      target: "/big",
      headers: [["Host", "h"]],
      body: null,
      protocol: "h1",
    }, {
      head: () => slow.sink,
      upgraded() {},
      error: (e) => slow.sink.abort(e),
    });
    await slow.done;
    const received = slow.received();
    const maxQueued = slow.maxQueued();
    assertEquals(received, total);
    assert(
      maxQueued < 2 * MB,
      `the sink is not written far past full, got ${(maxQueued / MB).toFixed(1)} MB queued`,
    );
  } finally {
    await origin.close();
  }
});

Deno.test("a 20 MB upload follows the service's backpressure (bounded in flight)", async () => {
  const total = 20 * MB;
  let received = 0;
  const source = generatedSource(total, 64 * 1024);
  let maxInFlight = 0;
  const origin = await nodeOrigin((req, res) => {
    // A slow service: reads a chunk, then pauses a little.
    req.on("data", (c: Uint8Array) => {
      received += c.byteLength;
      maxInFlight = Math.max(maxInFlight, source.produced() - received);
      req.pause();
      setTimeout(() => req.resume(), 1);
    });
    req.on("end", () => res.end(String(received)));
  });
  try {
    const res = await request(origin.url, {
      method: "PUT",
      target: "/upload",
      headers: [["Host", "h"]],
      contentLength: total,
      body: source,
    });
    assertEquals(latin1(res.body), String(total));
    assert(
      maxInFlight < 8 * MB,
      `at most a few MB in flight (socket buffers), got ${(maxInFlight / MB).toFixed(1)} MB`,
    );
  } finally {
    await origin.close();
  }
});

Deno.test("chunks handed to the sink are never reused (the kept chunks add up to the body)", async () => {
  const body = new Uint8Array(MB).map((_, i) => (i * 31 + (i >> 12)) & 0xff);
  const origin = await nodeOrigin((_req, res) => {
    for (let off = 0; off < body.length; off += 16 * 1024) res.write(body.subarray(off, off + 16 * 1024));
    res.end();
  });
  try {
    const res = await request(origin.url, { target: "/", headers: [["Host", "h"]] });
    assertEquals(res.body.length, body.length);
    assert(res.body.every((b, i) => b === body[i]), "every byte as sent");
  } finally {
    await origin.close();
  }
});

Deno.test("an https service is trusted through the process's trust store (system roots on request) or the ca option", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hopgate-local-tls-" });
  try {
    const { cert, key } = await testCert("127.0.0.1", "IP:127.0.0.1");
    const [certPem, keyPem] = [`${dir}/cert.pem`, `${dir}/key.pem`];
    await Deno.writeTextFile(certPem, cert);
    await Deno.writeTextFile(keyPem, key);
    // The default trust store: Deno's bundled roots, or the system's with DENO_TLS_CA_STORE=system
    // (where SSL_CERT_FILE names the bundle), as for every other TLS connection of the process.
    const probe = (env: Record<string, string>) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("./support/local_https_probe.ts", import.meta.url).pathname,
          certPem,
          keyPem,
        ],
        env,
        stdout: "piped",
        stderr: "inherit",
      }).output().then((o) => new TextDecoder().decode(o.stdout).trim());
    assertEquals(await probe({ DENO_TLS_CA_STORE: "system", SSL_CERT_FILE: certPem }), "trusted");
    assertEquals(await probe({ DENO_TLS_CA_STORE: "mozilla" }), "local_error");

    const origin = await nodeOrigin(
      (req, res) => res.end(`tls ${req.url}`),
      https.createServer({ cert, key }),
    );
    try {
      const res = await request(origin.url, { target: "/secure", headers: [["Host", "h"]] }, { ca: [cert] });
      assertEquals(latin1(res.body), "tls /secure");
      const untrusted = await request(origin.url, { target: "/", headers: [["Host", "h"]] }).then(
        () => null,
        (e) => e,
      );
      assertEquals(untrusted?.code, "local_error", "an unknown CA is refused");
    } finally {
      await origin.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("abort() during an upload cancels the body source and the service sees the request cut", async () => {
  const source = generatedSource(20 * MB, 64 * 1024);
  let cut!: () => void;
  const serviceSawCut = new Promise<void>((r) => cut = r);
  const origin = await nodeOrigin((req) => {
    req.on("data", () => {});
    req.on("close", () => {
      if (!req.complete) cut();
    });
  });
  try {
    const exchange = sendLocal(origin.url, {
      method: "PUT",
      target: "/up",
      headers: [["Host", "h"]],
      contentLength: 20 * MB,
      body: source,
      protocol: "h1",
    }, {
      head: () => {
        throw new Error("no answer expected");
      },
      upgraded() {},
      error: (e) => {
        throw e;
      },
    });
    await eventually(() => source.produced() >= MB, "1 MB read from the source", 10_000, 5);
    exchange.abort();
    await serviceSawCut;
    assert(source.cancelled(), "the body source was cancelled");
    assert(source.produced() < 20 * MB, "the upload stopped early");
  } finally {
    await origin.close();
  }
});

Deno.test("64 concurrent requests each get their own answer over the pooled connections", async () => {
  const origin = await nodeOrigin((req, res) => setTimeout(() => res.end(`answer to ${req.url}`), 5));
  try {
    const answers = await Promise.all(
      Array.from(
        { length: 64 },
        (_, i) => request(origin.url, { target: `/r/${i}`, headers: [["Host", "h"]] }),
      ),
    );
    answers.forEach((res, i) => assertEquals(latin1(res.body), `answer to /r/${i}`));
    assert(origin.connections() <= 64, "no more connections than requests in flight");
    const again = await Promise.all(
      Array.from(
        { length: 64 },
        (_, i) => request(origin.url, { target: `/s/${i}`, headers: [["Host", "h"]] }),
      ),
    );
    again.forEach((res, i) => assertEquals(latin1(res.body), `answer to /s/${i}`));
    assert(
      origin.connections() <= 64 + 8,
      `the second wave reuses the kept-alive ones (${origin.connections()})`,
    );
  } finally {
    await origin.close();
  }
});

Deno.test("a WebSocket upgrade to a ws service: 101, then frames both ways on the raw connection", async () => {
  const wss = new WebSocketServer({ noServer: true });
  wss.on("connection", (ws) => ws.on("message", (data) => ws.send(`echo ${data}`)));
  const server = http.createServer((_req, res) => res.end("not a websocket"));
  server.on(
    "upgrade",
    (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req)),
  );
  const origin = await nodeOrigin(() => {}, server);
  try {
    const result = await upgradeRequest(origin.url, {
      target: "/ws",
      headers: [
        ["Host", "h"],
        ["Upgrade", "websocket"],
        ["Sec-WebSocket-Version", "13"],
        ["Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="],
      ],
    });
    assert("upgraded" in result, "a 101 is an upgrade");
    const accept = result.upgraded.headers.find(([n]) => n.toLowerCase() === "sec-websocket-accept")?.[1];
    assertEquals(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); // RFC 6455 §1.3's example
    const { raw } = result.upgraded;
    const frames: Uint8Array[] = [];
    const echoed = new Promise<void>((resolve) =>
      raw.source.start({
        data: (c) => {
          frames.push(c);
          if (concat(frames).length >= 2 + "echo hello".length) resolve();
        },
        end: () => resolve(),
        error: () => resolve(),
      })
    );
    // A masked text frame "hello" (clients must mask, RFC 6455 §5.3).
    const mask = [1, 2, 3, 4];
    const payload = bytes("hello").map((b, i) => b ^ mask[i % 4]);
    raw.sink.write(Uint8Array.from([0x81, 0x80 | payload.length, ...mask, ...payload]));
    await echoed;
    const frame = concat(frames);
    assertEquals([frame[0], frame[1]], [0x81, "echo hello".length]);
    assertEquals(latin1(frame.subarray(2)), "echo hello");
    raw.sink.abort();
  } finally {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
    await origin.close();
  }
});
