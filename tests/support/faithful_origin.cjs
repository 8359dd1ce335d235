// A Node.js origin for the byte-faithfulness tests (run with the `node` binary: a real Node service).
// Every answer is fixed by the route, so a direct request and one through the tunnel can be compared
// byte for byte. /echo answers with what it received: method, raw target, raw header lines, body
// length and SHA-256, raw trailers.
"use strict";
const http = require("node:http");
const zlib = require("node:zlib");
const crypto = require("node:crypto");

const text = "HopGate keeps every byte. ".repeat(400);
const gzipped = zlib.gzipSync(Buffer.from(text));

function echo(req, res) {
  const hash = crypto.createHash("sha256");
  let length = 0;
  req.on("data", (c) => {
    hash.update(c);
    length += c.length;
  });
  req.on("end", () => {
    const body = JSON.stringify({
      method: req.method,
      target: Buffer.from(req.url, "latin1").toString("base64"),
      rawHeaders: req.rawHeaders,
      length,
      sha256: hash.digest("hex"),
      trailers: req.rawTrailers,
      httpVersion: req.httpVersion,
    });
    res.writeHead(200, ["Content-Type", "application/json", "Content-Length", String(Buffer.byteLength(body))]);
    res.end(body);
  });
}

const routes = {
  "/echo": echo,
  // Pre-compressed asset: gzip whatever the client asked for (Go's net/http and CDNs do this).
  "/gzip-always": (_req, res) => {
    res.writeHead(200, [
      "Content-Type", "text/plain",
      "Content-Encoding", "gzip",
      "Content-Length", String(gzipped.length),
      "Vary", "Accept-Encoding",
    ]);
    res.end(gzipped);
  },
  // Compresses on request, like express's compression().
  "/gzip-negotiate": (req, res) => {
    const wants = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
    const body = wants ? gzipped : Buffer.from(text);
    const head = ["Content-Type", "text/plain", "Content-Length", String(body.length), "Vary", "Accept-Encoding"];
    if (wants) head.push("Content-Encoding", "gzip");
    res.writeHead(200, head);
    res.end(body);
  },
  "/cookies": (_req, res) => {
    const head = ["Content-Type", "text/plain"];
    for (let i = 0; i < 200; i++) head.push("Set-Cookie", `c${i}=${"v".repeat(20)}${i}; Path=/; HttpOnly`);
    res.writeHead(200, head);
    res.end("cookies");
  },
  "/big-headers": (_req, res) => {
    const head = ["Content-Type", "text/plain"];
    for (let i = 0; i < 64; i++) head.push(`X-Big-${i}`, "b".repeat(1000));
    res.writeHead(200, head);
    res.end("big");
  },
  "/trailers": (_req, res) => {
    res.writeHead(200, ["Content-Type", "text/plain", "Trailer", "X-Checksum, X-Done"]);
    res.write("part one, ");
    res.write("part two");
    res.addTrailers([["X-Checksum", "abc123"], ["X-Done", "yes"]]);
    res.end();
  },
  "/no-content-type": (_req, res) => {
    res.writeHead(200, ["Content-Length", "5"]);
    res.end("plain");
  },
  "/mixed-case": (_req, res) => {
    res.writeHead(201, "Made It", ["x-lower", "1", "X-UPPER", "2", "X-Mixed-Case", "3", "x-lower", "4"]);
    res.end("ok");
  },
};

const server = http.createServer({ maxHeaderSize: 256 * 1024 }, (req, res) => {
  const path = req.url.split("?")[0];
  const route = routes[path] ?? (path.startsWith("/echo") ? echo : undefined);
  if (route) return route(req, res);
  res.writeHead(404, ["Content-Length", "0"]);
  res.end();
});
server.keepAliveTimeout = 30_000;
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
