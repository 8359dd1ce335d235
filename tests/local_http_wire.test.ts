/**
 * The local HTTP client on the wire: a raw TCP origin records the exact request bytes, so these
 * tests pin down what node:http under Deno writes (and adds) and how raw answers come back.
 */
import { closeLocalConnections } from "../lib/proxy/local_http.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { bytes, chunkSource, latin1, rawOrigin, request, upgradeRequest } from "./support/local_http.ts";

const OK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

Deno.test("sends header lines in order with their case and duplicates, adding only Connection: keep-alive", async () => {
  const origin = await rawOrigin(() => OK);
  try {
    const res = await request(origin.url, {
      target: "/a/b?x=1",
      headers: [
        ["Host", "app.example.com"],
        ["X-Dup", "1"],
        ["accept-ENCODING", "gzip, deflate, br, zstd"],
        ["x-dup", "2"],
        ["Cookie", "a=1"],
        ["Cookie", "b=2"],
      ],
    });
    assertEquals(res.status, 200);
    assertEquals(
      origin.requests[0],
      "GET /a/b?x=1 HTTP/1.1\r\nHost: app.example.com\r\nX-Dup: 1\r\naccept-ENCODING: gzip, deflate, br, zstd\r\n" +
        "x-dup: 2\r\nCookie: a=1\r\nCookie: b=2\r\nConnection: keep-alive\r\n\r\n",
    );
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("sends a raw UTF-8 request target byte for byte", async () => {
  const origin = await rawOrigin(() => OK);
  try {
    // "/검색?q=한글" as UTF-8 bytes, one char per byte.
    const target = latin1(bytes("/검색?q=한글&x=%20"));
    await request(origin.url, { target, headers: [["Host", "h"]] });
    assertEquals(origin.requests[0].split("\r\n")[0], `GET ${target} HTTP/1.1`);
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("keeps the browser's Content-Length (at its position) and never chunks such a body", async () => {
  const origin = await rawOrigin(() => OK);
  try {
    await request(origin.url, {
      method: "PUT",
      target: "/upload",
      headers: [["Host", "h"], ["content-length", "11"], ["X-After", "1"]],
      contentLength: 11,
      body: chunkSource([bytes("hello "), bytes("world")]),
    });
    assertEquals(
      origin.requests[0],
      "PUT /upload HTTP/1.1\r\nHost: h\r\ncontent-length: 11\r\nX-After: 1\r\nConnection: keep-alive\r\n\r\nhello world",
    );
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("chunks a body without Content-Length (any method) and sends its trailers", async () => {
  const origin = await rawOrigin(() => OK);
  try {
    await request(origin.url, {
      method: "POST",
      target: "/stream",
      headers: [["Host", "h"], ["Trailer", "X-Checksum"]],
      body: chunkSource([bytes("abc"), bytes("defgh")], [["X-Checksum", "123"], ["x-more", "a b"]]),
    });
    await request(origin.url, {
      method: "GET",
      target: "/get-with-body",
      headers: [],
      body: chunkSource([bytes("q")]),
    });
    assertEquals(
      origin.requests[0],
      "POST /stream HTTP/1.1\r\nHost: h\r\nTrailer: X-Checksum\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n" +
        "3\r\nabc\r\n5\r\ndefgh\r\n0\r\nX-Checksum: 123\r\nx-more: a b\r\n\r\n",
    );
    assertEquals(
      origin.requests[1],
      "GET /get-with-body HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n1\r\nq\r\n0\r\n\r\n",
    );
    assertEquals(origin.connections, 1, "the second request reuses the kept-alive connection");
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("a bodiless request carries no framing, but Content-Length: 0 for POST/PUT/PATCH (not empty chunks)", async () => {
  const origin = await rawOrigin(() => OK);
  try {
    await request(origin.url, { method: "POST", target: "/p", headers: [["Host", "h"]] });
    await request(origin.url, { method: "DELETE", target: "/d", headers: [["Host", "h"]] });
    assertEquals(
      origin.requests[0],
      "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
    );
    assertEquals(origin.requests[1], "DELETE /d HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n");
    assertEquals(origin.connections, 1, "the connection stays kept alive");
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("returns response lines raw, skips 1xx answers, and carries response trailers", async () => {
  const origin = await rawOrigin(() =>
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" +
    "HTTP/1.1 207 Multi Status Text\r\nX-B: 1\r\nx-b: 2\r\nTransfer-Encoding: chunked\r\nTrailer: grpc-status\r\n\r\n" +
    "2\r\nok\r\n0\r\ngrpc-status: 0\r\nX-Tail: t\r\n\r\n"
  );
  try {
    const res = await request(origin.url, { target: "/", headers: [["Host", "h"]] });
    assertEquals(res.status, 207);
    assertEquals(res.statusText, "Multi Status Text");
    assertEquals(res.headers, [["X-B", "1"], ["x-b", "2"], ["Transfer-Encoding", "chunked"], [
      "Trailer",
      "grpc-status",
    ]]);
    assertEquals(latin1(res.body), "ok");
    assertEquals(res.trailers, [["grpc-status", "0"], ["X-Tail", "t"]]);
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("a response without Content-Type gets none, and a body with no trailers ends with null", async () => {
  const origin = await rawOrigin(() => "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
  try {
    const res = await request(origin.url, { target: "/", headers: [["Host", "h"]] });
    assertEquals(res.headers, [["Content-Length", "3"]]);
    assertEquals(res.trailers, null);
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("an upgrade answered 101 hands over the connection with the bytes read past the head", async () => {
  const origin = await rawOrigin((req, socket) => {
    socket.on("data", (d: Uint8Array) => socket.write("echo:" + latin1(d)));
    return req.startsWith("GET /ws")
      ? "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nfirst-frame"
      : null;
  });
  try {
    const result = await upgradeRequest(origin.url, {
      target: "/ws",
      headers: [["Host", "h"], ["Upgrade", "websocket"], ["Sec-WebSocket-Key", "k"]],
    });
    assert("upgraded" in result, "a 101 is an upgrade");
    assertEquals(result.upgraded.headers, [["Upgrade", "websocket"], ["Connection", "Upgrade"]]);
    assertEquals(
      origin.requests[0],
      "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\nConnection: Upgrade\r\n\r\n",
    );
    const { raw } = result.upgraded;
    let received = "";
    const ended = new Promise<void>((resolve, reject) => {
      raw.source.start({
        data: (c) => {
          received += latin1(c);
          if (received.endsWith("echo:ping")) raw.sink.abort();
        },
        end: () => resolve(),
        error: () => resolve(),
      });
      setTimeout(() => reject(new Error(`no echo; received ${JSON.stringify(received)}`)), 5000);
    });
    raw.sink.write(bytes("ping"));
    await ended;
    assertEquals(received, "first-frameecho:ping");
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("an upgrade request answered 200 is an ordinary response", async () => {
  const origin = await rawOrigin(() => "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain");
  try {
    const result = await upgradeRequest(origin.url, { target: "/ws", headers: [["Upgrade", "websocket"]] });
    assert("answer" in result, "a 200 is not an upgrade");
    assertEquals([result.answer.status, latin1(result.answer.body)], [200, "plain"]);
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("a refused port is local_unreachable", async () => {
  const origin = await rawOrigin(() => OK);
  const url = origin.url;
  await origin.close();
  const e = await request(url, { target: "/" }).then(() => null, (e) => e);
  assertEquals(e?.code, "local_unreachable");
  assertMatch(e.message, new RegExp(url.host));
  closeLocalConnections();
});

Deno.test("a connection closed mid-body aborts the sink instead of ending it short", async () => {
  const origin = await rawOrigin((_req, socket) => {
    socket.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
    setTimeout(() => socket.destroy(), 50);
    return null;
  });
  try {
    const e = await request(origin.url, { target: "/" }).then(() => null, (e) => e);
    assert(e instanceof Error, "the body must fail");
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("an answer that is not HTTP is local_error", async () => {
  const origin = await rawOrigin((_req, socket) => {
    socket.end("SSH-2.0-OpenSSH\r\n");
    return null;
  });
  try {
    const e = await request(origin.url, { target: "/" }).then(() => null, (e) => e);
    assertEquals(e?.code, "local_error");
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("a kept-alive connection reset by the origin as it is reused is retried on a fresh one (node:http under Deno does it)", async () => {
  let n = 0;
  const origin = await rawOrigin((_req, socket) => {
    n++;
    // The first answer keeps the connection; the second request on it finds it reset.
    if (n === 2) {
      socket.resetAndDestroy();
      return null;
    }
    return OK;
  });
  try {
    await request(origin.url, { target: "/1" });
    const res = await request(origin.url, { target: "/2" });
    assertEquals(res.status, 200);
    assertEquals(origin.connections, 2);
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("a HEAD answer's Content-Length announces no body, and the connection stays usable", async () => {
  const origin = await rawOrigin((req) =>
    req.startsWith("HEAD")
      ? "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
      : "HTTP/1.1 204 No Content\r\n\r\n"
  );
  try {
    const head = await request(origin.url, { method: "HEAD", target: "/file" });
    assertEquals([head.status, head.body.length, head.headers], [200, 0, [["Content-Length", "100"]]]);
    const next = await request(origin.url, { target: "/next" });
    assertEquals(next.status, 204);
    assertEquals(origin.connections, 1);
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("a TLS handshake that never completes is local_unreachable after the connect timeout", async () => {
  // Accepts TCP, never answers the ClientHello.
  const origin = await rawOrigin(() => null);
  const url = new URL(origin.url.href.replace("http:", "https:"));
  try {
    const started = performance.now();
    const e = await request(url, { target: "/" }, { connectTimeoutMs: 300 }).then(() => null, (e) => e);
    assertEquals(e?.code, "local_unreachable", e?.message);
    assert(performance.now() - started < 5_000, "the timeout decided, not something slower");
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("nothing is added to a bare request: no Host, User-Agent, Accept or Accept-Encoding", async () => {
  const origin = await rawOrigin(() => OK);
  try {
    await request(origin.url, { target: "/bare" });
    assertEquals(origin.requests[0], "GET /bare HTTP/1.1\r\nConnection: keep-alive\r\n\r\n");
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("an upgraded connection half-closes: our end reaches the service, whose answer still comes back", async () => {
  const origin = await rawOrigin((_req, socket) => {
    let got = "";
    socket.on("data", (d: Uint8Array) => got += latin1(d));
    socket.on("end", () => socket.end(`got ${got} after your end`));
    return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n";
  });
  try {
    const result = await upgradeRequest(origin.url, { target: "/", headers: [["Upgrade", "x"]] });
    assert("upgraded" in result, "a 101 is an upgrade");
    const { raw } = result.upgraded;
    let received = "";
    const ended = new Promise<void>((resolve, reject) =>
      raw.source.start({ data: (c) => received += latin1(c), end: () => resolve(), error: reject })
    );
    raw.sink.write(bytes("bye"));
    raw.sink.end();
    await ended;
    assertEquals(received, "got bye after your end");
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});

Deno.test("a request that cannot be written as given is bad_request, and nothing reaches the service", async () => {
  const origin = await rawOrigin(() => OK);
  try {
    const space = await request(origin.url, { target: "/a b" }).then(() => null, (e) => e);
    assertEquals(space?.code, "bad_request");
    const newline = await request(origin.url, { target: "/", headers: [["X-Evil", "a\r\nInjected: 1"]] })
      .then(() => null, (e) => e);
    assertEquals(newline?.code, "bad_request");
    const name = await request(origin.url, { target: "/", headers: [["Bad Name", "1"]] }).then(
      () => null,
      (e) => e,
    );
    assertEquals(name?.code, "bad_request");
    assertEquals(origin.requests, []);
    const trailer = await request(origin.url, {
      method: "POST",
      target: "/",
      body: chunkSource([bytes("x")], [["X-T", "a\nb"]]),
    }).then(() => null, (e) => e);
    assertEquals(trailer?.code, "bad_request");
  } finally {
    closeLocalConnections();
    await origin.close();
  }
});
