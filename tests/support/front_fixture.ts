/** A small FrontHandler, certificates and raw-socket helpers for the front tests. */
import tls from "node:tls";
import { type HeaderLine, latin1Bytes, latin1String } from "../../lib/protocol/body.ts";
import type { FrontHandler, FrontRequest, FrontResponse } from "../../lib/proxy/front_types.ts";
import { sleep } from "./wait.ts";

export interface Seen {
  method: string;
  target: string;
  headers: HeaderLine[];
  authority: string;
  httpVersion: string;
  body: string;
  trailers: HeaderLine[] | null;
  contentLength: number | undefined;
  remoteAddr: string;
}

/** Reads a whole request body as a byte string. */
export function readBody(req: FrontRequest): Promise<{ body: string; trailers: HeaderLine[] | null }> {
  if (!req.body) return Promise.resolve({ body: "", trailers: null });
  return new Promise((resolve, reject) => {
    const parts: string[] = [];
    req.body!.start({
      data: (c) => parts.push(latin1String(c)),
      end: (trailers) => resolve({ body: parts.join(""), trailers }),
      error: reject,
    });
  });
}

function send(
  res: FrontResponse,
  status: number,
  headers: HeaderLine[],
  body: string,
  trailers?: HeaderLine[],
) {
  res.head(status, status === 200 ? "OK" : "Status", headers);
  if (body) res.body.write(latin1Bytes(body));
  res.body.end(trailers ?? null);
}

function describe(req: FrontRequest): Seen {
  return {
    method: req.method,
    target: req.target,
    headers: req.headers,
    authority: req.authority,
    httpVersion: req.httpVersion,
    body: "",
    trailers: null,
    contentLength: req.contentLength,
    remoteAddr: req.remoteAddr,
  };
}

/** The test handler: routes on the target's path; records every request it sees. */
export function testHandler(seen: Seen[] = []): FrontHandler {
  return async (req, res) => {
    const path = req.target.split("?")[0];
    if (path === "/upgrade" && req.upgrade) {
      const raw = res.switchProtocols("Switching Protocols", [["Upgrade", "echo"], [
        "Connection",
        "Upgrade",
      ]]);
      // Echo every byte back, upper-cased, so the test sees the duplex both ways.
      raw.source.start({
        data: (c) => raw.sink.write(latin1Bytes(latin1String(c).toUpperCase())),
        end: () => raw.sink.end(),
        error: () => raw.sink.abort(),
      });
      return;
    }
    if (path === "/reject") throw new Error("the handler failed on purpose");
    if (path === "/hang") {
      // Never answers: the test goes away and the abort must be reported.
      req.onAbort(() =>
        seen.push({ ...describe(req), target: "aborted:" + req.target, body: "", trailers: null })
      );
      return;
    }
    if (path.startsWith("/source/")) {
      // N MiB, written only as fast as the browser reads (write() false → wait for drain).
      let left = Number(path.slice(8)) * 1024 * 1024;
      const chunk = new Uint8Array(64 * 1024).fill(120);
      res.head(200, "OK", [["Content-Length", String(left)]]);
      const pump = () => {
        while (left > 0) {
          left -= chunk.length;
          if (!res.body.write(chunk.slice())) return res.body.onDrain(pump);
        }
        res.body.end(null);
      };
      return pump();
    }
    if (path === "/sink") {
      // Counts the body, pausing after every chunk for a tick: the sender must be held back.
      let n = 0;
      req.body!.start({
        data(c) {
          n += c.byteLength;
          req.body!.pause();
          setTimeout(() => req.body!.resume(), 0);
        },
        end: () => send(res, 200, [["Content-Length", String(String(n).length)]], String(n)),
        error: () => {},
      });
      return;
    }
    if (path === "/no-read") return send(res, 200, [["Content-Length", "2"]], "ok");
    if (path === "/late") await sleep(400);
    if (path === "/continue") {
      // Answers before reading (a server that would refuse the upload): no 100 Continue goes out.
      return send(res, 417, [["Content-Length", "0"]], "");
    }
    let read;
    try {
      read = await readBody(req);
    } catch {
      return; // the connection went away mid-body
    }
    const { body, trailers } = read;
    seen.push({
      method: req.method,
      target: req.target,
      headers: req.headers,
      authority: req.authority,
      httpVersion: req.httpVersion,
      body,
      trailers,
      contentLength: req.contentLength,
      remoteAddr: req.remoteAddr,
    });
    const m = /^\/(\w[\w-]*)\/?(\d*)$/.exec(path);
    const n = m?.[2] ? Number(m[2]) : 0;
    switch (m?.[1]) {
      case "len":
        return send(res, 200, [["Content-Length", String(n)], ["X-Kind", "len"]], "x".repeat(n));
      case "stream":
        return send(res, 200, [["X-Kind", "stream"]], "y".repeat(n));
      case "trailers":
        res.head(200, "OK", [["Content-Type", "text/plain"], ["Trailer", "X-Checksum"]]);
        res.body.write(latin1Bytes("part1-"));
        res.body.write(latin1Bytes("part2"));
        return res.body.end([["X-Checksum", "abc123"]]);
      case "cookies":
        return send(
          res,
          200,
          Array.from({ length: n }, (_, i) => ["Set-Cookie", `c${i}=${"v".repeat(20)}`]),
          "ok",
        );
      case "bighead":
        return send(res, 200, Array.from({ length: 64 }, (_, i) => [`X-Big-${i}`, "h".repeat(1000)]), "ok");
      case "status":
        return send(res, n, [["X-Status", String(n)]], "body-that-must-not-appear");
      case "close":
        return send(res, 200, [["Connection", "close"], ["Content-Length", "2"]], "ok");
      default:
        return send(res, 200, [["Content-Type", "application/json"]], JSON.stringify(seen[seen.length - 1]));
    }
  };
}

/** A self-signed P-256 certificate made by openssl (default: localhost, a.test and 127.0.0.1). */
export async function testCert(
  cn = "localhost",
  san = "DNS:localhost,DNS:a.test,IP:127.0.0.1",
): Promise<{ cert: string; key: string }> {
  const dir = await Deno.makeTempDir({ prefix: "front-cert-" });
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      `${dir}/k.pem`,
      "-out",
      `${dir}/c.pem`,
      "-days",
      "2",
      "-subj",
      `/CN=${cn}`,
      "-addext",
      `subjectAltName=${san}`,
    ],
    stderr: "null",
  }).output();
  if (!out.success) throw new Error("openssl could not make a test certificate");
  const pair = {
    cert: await Deno.readTextFile(`${dir}/c.pem`),
    key: await Deno.readTextFile(`${dir}/k.pem`),
  };
  await Deno.remove(dir, { recursive: true });
  return pair;
}

/** The sni callback for the fronts: the one test certificate for every name. */
export function testSni(pair: { cert: string; key: string }) {
  const ctx = tls.createSecureContext(pair);
  return () => Promise.resolve(ctx);
}

/** A raw TCP exchange: writes the bytes, reads until the peer closes or `until` matches or time runs out. */
export async function rawExchange(
  port: number,
  bytes: Uint8Array | string,
  opts: { until?: (s: string) => boolean; timeoutMs?: number } = {},
): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(typeof bytes === "string" ? latin1Bytes(bytes) : bytes);
  const out = await readAll(conn, opts);
  conn.close();
  return out;
}

const pendingReads = new WeakMap<Deno.Conn, Promise<Uint8Array | null>>();

/** Reads from a connection until EOF, a match or a timeout (a read cut by the timeout is kept for the next call). */
export async function readAll(
  conn: Deno.Conn,
  opts: { until?: (s: string) => boolean; timeoutMs?: number } = {},
): Promise<string> {
  let out = "";
  const deadline = Date.now() + (opts.timeoutMs ?? 5000);
  while (true) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let read = pendingReads.get(conn);
    if (!read) {
      const b = new Uint8Array(65536);
      read = conn.read(b).then((n) => (n === null ? null : b.subarray(0, n)), () => null);
    }
    pendingReads.delete(conn);
    const got = await Promise.race([read, new Promise<"t">((r) => (timer = setTimeout(() => r("t"), left)))]);
    clearTimeout(timer);
    if (got === "t") {
      pendingReads.set(conn, read);
      break;
    }
    if (got === null) break;
    out += latin1String(got);
    if (opts.until?.(out)) break;
  }
  return out;
}

/** Runs curl and returns stdout (as a byte string) and the exit code. */
export async function curl(args: string[]): Promise<{ out: string; code: number; err: string }> {
  const r = await new Deno.Command("curl", {
    args: ["-s", "--max-time", "10", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  return { out: latin1String(r.stdout), code: r.code, err: new TextDecoder().decode(r.stderr) };
}

export interface ParsedResponse {
  status: number;
  headers: HeaderLine[];
  body: string;
  trailers: HeaderLine[] | null;
}

/** Splits a byte string into HTTP/1.1 responses; `bodyless[i]` marks answers to HEAD. */
export function parseResponses(s: string, bodyless: boolean[] = []): ParsedResponse[] {
  const out: ParsedResponse[] = [];
  let pos = 0;
  while (pos < s.length) {
    const end = s.indexOf("\r\n\r\n", pos);
    if (end === -1) throw new Error(`incomplete response head: ${JSON.stringify(s.slice(pos, pos + 200))}`);
    const lines = s.slice(pos, end).split("\r\n");
    const status = Number(lines[0].split(" ")[1]);
    const headers = lines.slice(1).map((
      l,
    ): HeaderLine => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()]);
    pos = end + 4;
    const get = (n: string) => headers.find(([k]) => k.toLowerCase() === n)?.[1];
    let body = "";
    let trailers: HeaderLine[] | null = null;
    const interim = status < 200 && status !== 101;
    if (interim || status === 101) {
      out.push({ status, headers, body, trailers });
      if (status === 101) {
        out.push({ status: 0, headers: [], body: s.slice(pos), trailers: null });
        return out;
      }
      continue;
    }
    if (bodyless[out.filter((r) => r.status >= 200).length] || status === 204 || status === 304) {
      // no body
    } else if (get("transfer-encoding") === "chunked") {
      while (true) {
        const eol = s.indexOf("\r\n", pos);
        const n = parseInt(s.slice(pos, eol), 16);
        pos = eol + 2;
        if (n === 0) break;
        body += s.slice(pos, pos + n);
        pos += n + 2;
      }
      const tEnd = s.indexOf("\r\n\r\n", pos - 2);
      const t = s.slice(pos, tEnd + 2).split("\r\n").filter((l) => l.length > 0);
      trailers = t.length
        ? t.map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()])
        : null;
      pos = tEnd + 4;
    } else if (get("content-length") !== undefined) {
      body = s.slice(pos, pos + Number(get("content-length")));
      pos += body.length;
    } else {
      body = s.slice(pos);
      pos = s.length;
    }
    out.push({ status, headers, body, trailers });
  }
  return out;
}
