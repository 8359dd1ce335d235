/**
 * The local HTTP client over h2c: a grpc-js service (unary, server-streaming, statuses in trailers)
 * and a raw node:http2 service that records what arrives (path bytes, header lines, trailers).
 */
import * as grpc from "@grpc/grpc-js";
import http2 from "node:http2";
import type { HeaderLine } from "../lib/protocol/body.ts";
import { closeLocalConnections, sendLocal } from "../lib/proxy/local_http.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { startGrpcEcho } from "./support/grpc_echo.ts";
import {
  bytes,
  chunkSource,
  concat,
  generatedSource,
  latin1,
  rawOrigin,
  request,
  throttledSink,
} from "./support/local_http.ts";
import { sleep } from "./support/wait.ts";

/** A length-prefixed gRPC message carrying EchoRequest{text = 1, count = 2} (protobuf, by hand). */
function echoRequest(text: string, count = 0): Uint8Array {
  const t = bytes(text);
  const pb = [0x0a, t.length, ...t, ...(count ? [0x10, count] : [])];
  return Uint8Array.from([0, 0, 0, 0, pb.length, ...pb]);
}

/** The `text` fields of the EchoReply messages in a gRPC body. */
function echoReplies(body: Uint8Array): string[] {
  const out: string[] = [];
  for (let off = 0; off < body.length;) {
    const len = new DataView(body.buffer, body.byteOffset + off + 1, 4).getUint32(0);
    const msg = body.subarray(off + 5, off + 5 + len);
    assertEquals(msg[0], 0x0a, "EchoReply field 1");
    out.push(latin1(msg.subarray(2, 2 + msg[1])));
    off += 5 + len;
  }
  return out;
}

function grpcCall(url: URL, method: string, message: Uint8Array) {
  return request(url, {
    method: "POST",
    target: `/hopgate.test.Echo/${method}`,
    protocol: "h2c",
    headers: [["host", url.host], ["content-type", "application/grpc"], ["te", "trailers"], [
      "user-agent",
      "t",
    ]],
    body: chunkSource([message]),
  });
}

const value = (lines: HeaderLine[] | null, name: string) => lines?.find(([n]) => n === name)?.[1];

Deno.test("a grpc-js unary call over h2c answers with its message and grpc-status 0 in trailers", async () => {
  const origin = await startGrpcEcho();
  try {
    const res = await grpcCall(origin.url, "Say", echoRequest("hello"));
    assertEquals(res.status, 200);
    assertEquals(value(res.headers, "content-type"), "application/grpc+proto");
    assertEquals(echoReplies(res.body), ["echo: hello"]);
    assertEquals(value(res.trailers, "grpc-status"), "0");
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("a failing unary call carries its status and message (trailers-only answer: in the head)", async () => {
  const origin = await startGrpcEcho();
  try {
    const res = await grpcCall(origin.url, "Say", echoRequest("fail"));
    const status = value(res.headers, "grpc-status") ?? value(res.trailers, "grpc-status");
    const message = value(res.headers, "grpc-message") ?? value(res.trailers, "grpc-message");
    assertEquals([status, message], [String(grpc.status.INVALID_ARGUMENT), "text%20must%20not%20be%20fail"]);
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("a server-streaming call delivers every message, then its trailers (ok and failed)", async () => {
  const origin = await startGrpcEcho();
  try {
    const ok = await grpcCall(origin.url, "Count", echoRequest("n", 3));
    assertEquals(echoReplies(ok.body), ["n 0", "n 1", "n 2"]);
    assertEquals(value(ok.trailers, "grpc-status"), "0");

    const failed = await grpcCall(origin.url, "Count", echoRequest("fail", 2));
    assertEquals(echoReplies(failed.body), ["fail 0", "fail 1"]);
    assertEquals(value(failed.trailers, "grpc-status"), String(grpc.status.RESOURCE_EXHAUSTED));
    // Percent-encoded on the wire (gRPC over HTTP/2), as grpc-js sent it.
    assertEquals(value(failed.trailers, "grpc-message"), "stopped%20after%202%20replies");
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("h2c sends the raw path bytes, the header lines in order, and request trailers; one session serves many requests", async () => {
  const server = http2.createServer();
  let sessions = 0;
  const seen: { raw: string[]; trailers: string[]; body: string }[] = [];
  server.on("session", () => sessions++);
  server.on("stream", (stream, _headers, _flags, raw: string[]) => {
    const chunks: Uint8Array[] = [];
    let trailers: string[] = [];
    stream.on("data", (c: Uint8Array) => chunks.push(c));
    stream.on("trailers", (_t, _f, rawTrailers: string[]) => trailers = rawTrailers);
    stream.on("end", () => {
      seen.push({ raw, trailers, body: latin1(concat(chunks)) });
      stream.respond({ ":status": 201, "x-b": ["1", "2"] }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "x-done": "yes" }));
      stream.end("made");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
  try {
    const target = latin1(bytes("/검색?q=한글"));
    for (let i = 0; i < 3; i++) {
      const res = await request(url, {
        method: "POST",
        target,
        protocol: "h2c",
        headers: [["Host", "app.example"], ["X-One", "a"], ["Connection", "keep-alive"], ["x-one", "b"], [
          "accept",
          "*/*",
        ]],
        body: chunkSource([bytes("body")], [["x-checksum", "7"]]),
      });
      assertEquals([res.status, latin1(res.body)], [201, "made"]);
      assertEquals(res.headers.filter(([n]) => n === "x-b"), [["x-b", "1"], ["x-b", "2"]]);
      assertEquals(res.trailers, [["x-done", "yes"]]);
    }
    assertEquals(sessions, 1, "one session per origin, reused");
    assertEquals(seen[0].raw, [
      ":method",
      "POST",
      ":scheme",
      "http",
      ":authority",
      "app.example",
      ":path",
      target,
      "x-one",
      "a",
      "x-one",
      "b",
      "accept",
      "*/*",
    ]);
    assertEquals(seen[0].trailers, ["x-checksum", "7"]);
    assertEquals(seen[0].body, "body");
  } finally {
    closeLocalConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

Deno.test("a new h2c session is made after the service closed the previous one", async () => {
  let sessions = 0;
  const server = http2.createServer((_req, res) => res.end("ok"));
  server.on("session", (s) => {
    sessions++;
    // The first session goes away right after its first answer.
    if (sessions === 1) setTimeout(() => s.close(), 20);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
  try {
    assertEquals(latin1((await request(url, { target: "/1", protocol: "h2c" })).body), "ok");
    await sleep(100);
    assertEquals(latin1((await request(url, { target: "/2", protocol: "h2c" })).body), "ok");
    assertEquals(sessions, 2);
  } finally {
    closeLocalConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

Deno.test("h2c to a closed port is local_unreachable", async () => {
  const origin = await rawOrigin(() => null);
  const url = origin.url;
  await origin.close();
  const e = await request(url, { target: "/", protocol: "h2c" }).then(() => null, (e) => e);
  assert(e, "the request must fail");
  assertEquals(e.code, "local_unreachable", e.message);
  closeLocalConnections();
});

const MB = 1024 * 1024;

/** A node:http2 service with one handler per path. */
async function h2Origin(
  handler: (stream: http2.ServerHttp2Stream, path: string) => void,
): Promise<{ url: URL; close(): Promise<void> }> {
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {}); // the tests reset streams on purpose
    handler(stream, String(headers[":path"]));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}`),
    close: () =>
      new Promise<void>((r) => {
        closeLocalConnections();
        server.close(() => r());
      }),
  };
}

Deno.test("h2c: a reset body (short of its Content-Length, or gRPC without its status) aborts the sink; abort() cancels the stream", async () => {
  let cancelled!: (code: number) => void;
  const serviceSawCancel = new Promise<number>((r) => cancelled = r);
  const origin = await h2Origin((stream, path) => {
    // Deno's http2 client sees a reset as a clean end, so only a declared length shows it.
    stream.respond(
      path === "/grpc-reset" ? { ":status": 200, "content-type": "application/grpc" } : {
        ":status": 200,
        "content-length": "100",
      },
    );
    stream.write("part");
    if (path.endsWith("reset")) setTimeout(() => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR), 20);
    else stream.on("close", () => cancelled(stream.rstCode));
  });
  try {
    const e = await request(origin.url, { target: "/reset", protocol: "h2c" }).then(() => null, (e) => e);
    assert(e instanceof Error, "a reset body must fail, not end short");
    const grpcReset = await request(origin.url, { target: "/grpc-reset", protocol: "h2c" }).then(
      () => null,
      (e) => e,
    );
    assert(grpcReset instanceof Error, "a gRPC answer reset before its status must fail");

    let aborted = false;
    const exchange = sendLocal(origin.url, {
      method: "GET",
      target: "/hang",
      headers: [],
      body: null,
      protocol: "h2c",
    }, {
      head: () => ({
        write: () => {
          queueMicrotask(() => exchange.abort());
          return true;
        },
        onDrain() {},
        end: () => {},
        abort: () => void (aborted = true),
      }),
      upgraded() {},
      error() {},
    });
    assertEquals(await serviceSawCancel, http2.constants.NGHTTP2_CANCEL);
    assert(aborted, "the sink handed out is aborted");
  } finally {
    await origin.close();
  }
});

Deno.test("h2c: a 20 MB download follows the sink's backpressure", async () => {
  const total = 20 * MB;
  const origin = await h2Origin((stream) => {
    stream.respond({ ":status": 200 });
    const chunk = new Uint8Array(64 * 1024).fill(3);
    let written = 0;
    const pump = () => {
      while (written < total) {
        written += chunk.length;
        if (!stream.write(chunk)) return void stream.once("drain", pump);
      }
      stream.end();
    };
    pump();
  });
  try {
    const slow = throttledSink(32 * 1024); // 32 MB/s: slower than the stream can deliver
    sendLocal(origin.url, { method: "GET", target: "/big", headers: [], body: null, protocol: "h2c" }, {
      head: () => slow.sink,
      upgraded() {},
      error: (e) => slow.sink.abort(e),
    });
    await slow.done;
    assertEquals(slow.received(), total);
    assert(
      slow.maxQueued() < 2 * MB,
      `written far past full: ${(slow.maxQueued() / MB).toFixed(1)} MB queued`,
    );
  } finally {
    await origin.close();
  }
});

Deno.test("h2c: a 20 MB upload follows the service's backpressure", async () => {
  const total = 20 * MB;
  const source = generatedSource(total, 64 * 1024);
  let maxInFlight = 0;
  const origin = await h2Origin((stream) => {
    let received = 0;
    let sincePause = 0;
    stream.on("data", (c: Uint8Array) => {
      received += c.byteLength;
      maxInFlight = Math.max(maxInFlight, source.produced() - received);
      // A slow service: a short pause after every 256 KiB.
      sincePause += c.byteLength;
      if (sincePause < 256 * 1024) return;
      sincePause = 0;
      stream.pause();
      setTimeout(() => stream.resume(), 1);
    });
    stream.on("end", () => {
      stream.respond({ ":status": 200 });
      stream.end(String(received));
    });
  });
  try {
    const res = await request(origin.url, { method: "PUT", target: "/up", protocol: "h2c", body: source });
    assertEquals(latin1(res.body), String(total));
    assert(maxInFlight < 8 * MB, `at most a few MB in flight, got ${(maxInFlight / MB).toFixed(1)} MB`);
  } finally {
    await origin.close();
  }
});

/** Runs tests/support/local_h2_cookies.cjs under node; resolves with its URL and a stop function. */
async function nodeCookieOrigin(count: number): Promise<{ url: URL; stop(): Promise<void> }> {
  const child = new Deno.Command("node", {
    args: [new URL("./support/local_h2_cookies.cjs", import.meta.url).pathname, String(count)],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the node h2c service exited before printing its port");
    text += value;
  }
  return {
    url: new URL(`http://127.0.0.1:${Number(text.trim())}`),
    async stop() {
      closeLocalConnections();
      await child.stdin.close();
      await reader.cancel();
      await child.status;
    },
  };
}

// Deno's http2 client refuses a head spread over too many CONTINUATION frames (a flood guard):
// 100 lines of 1.3 KB (128 KiB) pass, 200 (256 KiB) do not; HTTP/1.1 has no such limit.
Deno.test("h2c: a 128 KiB response head of 100 Set-Cookie lines passes whole", async () => {
  const origin = await nodeCookieOrigin(100);
  try {
    const res = await request(origin.url, { target: "/", protocol: "h2c" });
    const cookies = res.headers.filter(([n]) => n === "set-cookie").map(([, v]) => v);
    assertEquals(cookies.length, 100);
    assertEquals(cookies[99], `c99=${"v".repeat(1300)}`);
  } finally {
    await origin.stop();
  }
});

Deno.test("h2c: bodiless answers (204, HEAD, END_STREAM on the head) end cleanly", async () => {
  const origin = await h2Origin((stream, path) => {
    if (path === "/204") stream.respond({ ":status": 204 }, { endStream: true });
    else if (path === "/head") {
      stream.respond({ ":status": 200, "content-length": "42" }, { endStream: true });
    } else stream.respond({ ":status": 200, "x-empty": "1" }, { endStream: true });
  });
  try {
    const noContent = await request(origin.url, { target: "/204", protocol: "h2c" });
    assertEquals([noContent.status, noContent.body.length], [204, 0]);
    const head = await request(origin.url, { method: "HEAD", target: "/head", protocol: "h2c" });
    assertEquals([head.status, value(head.headers, "content-length")], [200, "42"]);
    const empty = await request(origin.url, { target: "/empty", protocol: "h2c" });
    assertEquals([empty.status, empty.body.length, empty.trailers], [200, 0, null]);
  } finally {
    await origin.close();
  }
});

Deno.test("h2c: a header or trailer that cannot be sent is bad_request", async () => {
  let streams = 0;
  const origin = await h2Origin((stream) => {
    streams++;
    // Answers only a complete request, so the trailer failure is what the request ends with.
    stream.resume();
    stream.on("end", () => {
      stream.respond({ ":status": 200 });
      stream.end();
    });
  });
  try {
    const e = await request(origin.url, { target: "/", protocol: "h2c", headers: [["x-evil", "a\r\nb: 1"]] })
      .then(() => null, (e) => e);
    assertEquals(e?.code, "bad_request", e?.message);
    assertEquals(streams, 0, "nothing reached the service");
    const trailer = await request(origin.url, {
      method: "POST",
      target: "/",
      protocol: "h2c",
      body: chunkSource([bytes("x")], [["x-t", "a\nb"]]),
    }).then(() => null, (e) => e);
    assertEquals(trailer?.code, "bad_request", trailer?.message);
  } finally {
    await origin.close();
  }
});

Deno.test("h2c: chunks handed to the sink are never reused (the kept chunks add up to the body)", async () => {
  const body = new Uint8Array(MB).map((_, i) => (i * 31 + (i >> 12)) & 0xff);
  const origin = await h2Origin((stream) => {
    stream.respond({ ":status": 200 });
    for (let off = 0; off < body.length; off += 16 * 1024) stream.write(body.slice(off, off + 16 * 1024));
    stream.end();
  });
  try {
    const res = await request(origin.url, { target: "/", protocol: "h2c" });
    assertEquals(res.body.length, body.length);
    assert(res.body.every((b, i) => b === body[i]), "every byte as sent");
  } finally {
    await origin.close();
  }
});
