/** The local HTTP client's pure header mappings (HTTP/1.1 raw array, HTTP/2 header block), fuzzed. */
import type { HeaderLine } from "../lib/protocol/body.ts";
import { h1HeaderArray } from "../lib/proxy/local_h1.ts";
import { h2cHeaderObject } from "../lib/proxy/local_h2c.ts";
import type { LocalRequest } from "../lib/proxy/local_http.ts";
import { seededRandom } from "../lib/testing/seeded_random.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { chunkSource } from "./support/local_http.ts";

const NAMES = [
  "Host",
  "X-A",
  "x-a",
  "Content-Length",
  "transfer-encoding",
  "Cookie",
  "Connection",
  "TE",
  "accept",
];

function randomRequest(random: () => number): LocalRequest {
  const headers: HeaderLine[] = Array.from(
    { length: Math.floor(random() * 12) },
    () => [NAMES[Math.floor(random() * NAMES.length)], `v${Math.floor(random() * 1000)}`],
  );
  const withBody = random() < 0.5;
  return {
    method: ["GET", "POST", "PUT", "HEAD"][Math.floor(random() * 4)],
    target: "/",
    headers,
    body: withBody ? chunkSource([]) : null,
    contentLength: random() < 0.5 ? Math.floor(random() * 100) : undefined,
    protocol: "h1",
    upgrade: random() < 0.2,
  };
}

const isFraming = (n: string) => ["content-length", "transfer-encoding"].includes(n.toLowerCase());

Deno.test("h1 header array: every non-framing line kept in order, exactly one framing decision", () => {
  const random = seededRandom(10);
  for (let i = 0; i < 2000; i++) {
    const req = randomRequest(random);
    const flat = h1HeaderArray(req);
    const lines: HeaderLine[] = [];
    for (let j = 0; j < flat.length; j += 2) lines.push([flat[j], flat[j + 1]]);
    const kept = lines.filter(([n]) => !isFraming(n));
    const expected = req.headers.filter(([n]) => !isFraming(n));
    const added = kept.slice(expected.length);
    assertEquals(kept.slice(0, expected.length), expected, "the caller's lines, in order");
    const hasConnection = expected.some(([n]) => n.toLowerCase() === "connection");
    assertEquals(added, req.upgrade && !hasConnection ? [["Connection", "Upgrade"]] : []);
    const framing = lines.filter(([n]) => isFraming(n));
    if (req.contentLength !== undefined) {
      assertEquals(framing.map(([n, v]) => [n.toLowerCase(), v]), [[
        "content-length",
        String(req.contentLength),
      ]]);
    } else if (req.body) {
      assertEquals(framing, [["Transfer-Encoding", "chunked"]]);
    } else {
      assert(framing.length <= 1 && framing.every(([, v]) => v === "0"), "at most Content-Length: 0");
    }
  }
});

Deno.test("h2c header block: pseudo-headers first, same-name lines in order, connection-specific dropped", () => {
  const random = seededRandom(11);
  const origin = new URL("http://127.0.0.1:9000");
  for (let i = 0; i < 2000; i++) {
    const req = { ...randomRequest(random), protocol: "h2c" as const, upgrade: false };
    const block = h2cHeaderObject(origin, req);
    const keys = Object.keys(block);
    assertEquals(keys.slice(0, 4), [":method", ":scheme", ":authority", ":path"]);
    assertEquals(block[":authority"], req.headers.find(([n]) => n === "Host")?.[1] ?? "127.0.0.1:9000");
    for (const k of ["connection", "transfer-encoding", "host"]) assert(!(k in block), `${k} is not sent`);
    const xa = req.headers.filter(([n]) => n.toLowerCase() === "x-a").map(([, v]) => v);
    assertEquals(xa.length ? [block["x-a"]].flat() : [], xa, "x-a lines in order");
    assert(!("te" in block), 'TE other than "trailers" is not sent');
    assertEquals(
      block["content-length"],
      req.contentLength === undefined ? undefined : String(req.contentLength),
    );
  }
});
