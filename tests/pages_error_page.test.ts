import { assertEquals, assertMatch, assertNotMatch } from "./support/assert.ts";
import { errorResponse, prefersJson } from "../lib/pages/mod.ts";

const req = (accept?: string, method = "GET") =>
  new Request("https://demo.example.com/x", { method, headers: accept ? { accept } : {} });

Deno.test("a browser Accept gets a branded HTML page naming the request id", async () => {
  const res = errorResponse(
    502,
    "tunnel_offline",
    "no client for demo.example.com",
    req("text/html,application/xhtml+xml,*/*;q=0.8"),
    "rid-123",
  );
  assertEquals(res.status, 502);
  assertMatch(res.headers.get("content-type")!, /^text\/html/);
  assertEquals(res.headers.get("x-request-id"), "rid-123");
  const html = await res.text();
  assertMatch(html, /HopGate/);
  assertMatch(html, /Tunnel offline/);
  assertMatch(html, /rid-123/);
  assertNotMatch(html, /<link|<script|src=/, "no external assets");
});

Deno.test("Accept preferring application/json gets the JSON error body", async () => {
  const res = errorResponse(504, "tunnel_timeout", "no answer in 30000 ms", req("application/json"), "rid-9");
  assertEquals(res.status, 504);
  assertMatch(res.headers.get("content-type")!, /^application\/json/);
  assertEquals(await res.json(), {
    error: { code: "tunnel_timeout", message: "no answer in 30000 ms", request_id: "rid-9" },
  });
});

Deno.test("the message is HTML-escaped in pages", async () => {
  const html = await errorResponse(400, "bad_request", "<script>alert(1)</script>", req(), "r").text();
  assertNotMatch(html, /<script>alert/);
  assertMatch(html, /&#60;script&#62;/);
});

Deno.test("each documented status renders its own headline", async () => {
  const titles: Record<number, RegExp> = {
    400: /Bad request/,
    404: /Not found/,
    413: /Payload too large/,
    502: /Bad gateway/,
    503: /Service unavailable/,
    504: /Gateway timeout/,
  };
  for (const [status, title] of Object.entries(titles)) {
    assertMatch(await errorResponse(Number(status), "x", "m", req(), "r").text(), title);
  }
  assertMatch(
    await errorResponse(502, "local_unreachable", "connect refused", req(), "r").text(),
    /Local service unreachable/,
  );
});

Deno.test("HEAD gets headers and no body", async () => {
  const res = errorResponse(404, "not_found", "m", req(undefined, "HEAD"), "r");
  assertEquals(res.status, 404);
  assertEquals(await res.text(), "");
});

Deno.test("prefersJson weighs q values; HTML wins ties and a missing Accept", () => {
  assertEquals(prefersJson(null), false);
  assertEquals(prefersJson("*/*"), false);
  assertEquals(prefersJson("application/json, text/html"), false);
  assertEquals(prefersJson("text/html;q=0.5, application/json"), true);
  assertEquals(prefersJson("application/*"), true);
  assertEquals(prefersJson("application/json;q=0"), false);
  assertEquals(prefersJson("application/json, text/plain, */*"), true);
});
