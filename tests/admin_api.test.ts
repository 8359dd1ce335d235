/**
 * The admin API through the real stack: a server process, its HTTP listener, and each database
 * backend (embedded PGlite, and a private PostgreSQL cluster started for the run).
 */
import { assert, assertEquals, assertMatch, assertNotEquals } from "./support/assert.ts";
import { startPostgres } from "../scripts/postgres.ts";
import { hostClient, SERVER_DOMAIN, startTestServer, type TestServer } from "./support/server.ts";
import { makeScratchDir, scratchRoot } from "./support/scratch.ts";
import { eventually } from "./support/wait.ts";

const BAD_DOMAINS: [string, unknown][] = [
  ["empty", ""],
  ["single label", "localhost"],
  ["IPv4 address", "192.168.1.10"],
  ["IPv6 address", "[::1]"],
  ["wildcard", "*.example.com"],
  ["port", "app.example.com:8080"],
  ["scheme", "https://app.example.com"],
  ["path", "app.example.com/x"],
  ["empty label", "app..example.com"],
  ["leading hyphen", "-app.example.com"],
  ["trailing hyphen", "app-.example.com"],
  ["label over 63", `${"a".repeat(64)}.example.com`],
  ["over 253 characters", `${"abcdefghi.".repeat(26)}com`],
  ["space", "app example.com"],
  ["underscore", "app_x.example.com"],
  ["user info", "user@example.com"],
  ["numeric top label", "app.123"],
  ["the server's own domain", SERVER_DOMAIN],
  ["not a string", 42],
  ["null", null],
];

async function json(res: Response): Promise<Record<string, unknown>> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`not JSON (${res.status}): ${text}`);
  }
}

async function suite(t: Deno.TestContext, start: () => Promise<TestServer>) {
  let server = await start();
  try {
    let key = "";
    let id = "";
    await t.step("a wrong or missing admin key is 401 with one body whatever was wrong", async () => {
      const bodies = new Set<string>();
      for (const k of [null, "", "wrong", "Bearer", `${"test-admin-key-0123456789abcdef"}x`]) {
        const res = await server.admin("/domains", { key: k });
        assertEquals(res.status, 401);
        bodies.add(await res.text());
      }
      const basic = await fetch(`${server.httpUrl}/api/v1/admin/domains`, {
        headers: { authorization: "Basic dGVzdDp0ZXN0", host: SERVER_DOMAIN },
        client: hostClient(),
      } as RequestInit);
      assertEquals(basic.status, 401);
      bodies.add(await basic.text());
      assertEquals(bodies.size, 1);
      assertMatch([...bodies][0], /"code":"unauthorized"/);
    });

    await t.step("GET /servers lists this server alone, as itself, with its DTLS address", async () => {
      type Listed = { id: string; self: boolean; addresses: Record<string, string> };
      let servers: Listed[] = [];
      await eventually(
        async () => {
          servers = (await (await server.admin("/servers")).json()).servers;
          return servers.length > 0;
        },
        "a live server listed",
        5000,
      );
      assertEquals(servers.length, 1);
      assertEquals([servers[0].self, servers[0].addresses.dtls], [true, server.ready.dtls]);
    });

    await t.step("registers a domain and issues a 64-hex key", async () => {
      const res = await server.admin("/domains", {
        method: "POST",
        body: JSON.stringify({ domain: "App.Example.COM", memo: "first" }),
      });
      assertEquals(res.status, 201);
      const body = await json(res);
      assertEquals(body.domain, "app.example.com");
      assertEquals(body.memo, "first");
      assertMatch(String(body.client_api_key), /^[0-9a-f]{64}$/);
      assertMatch(String(body.id), /^[0-9a-f-]{36}$/);
      assert(!Number.isNaN(Date.parse(String(body.created_at))));
      key = String(body.client_api_key);
      id = String(body.id);
    });

    await t.step("converts an IDN to punycode", async () => {
      const res = await server.admin("/domains", {
        method: "POST",
        body: JSON.stringify({ domain: "bücher.example" }),
      });
      assertEquals(res.status, 201);
      assertEquals((await json(res)).domain, "xn--bcher-kva.example");
    });

    await t.step("a taken domain is 409", async () => {
      const res = await server.admin("/domains", {
        method: "POST",
        body: JSON.stringify({ domain: "app.example.com" }),
      });
      assertEquals(res.status, 409);
      assertEquals((await json(res) as { error: { code: string } }).error.code, "domain_taken");
    });

    for (const [name, domain] of BAD_DOMAINS) {
      await t.step(`rejects a bad domain: ${name}`, async () => {
        const res = await server.admin("/domains", { method: "POST", body: JSON.stringify({ domain }) });
        assertEquals(res.status, 400);
        const body = await json(res) as { error: { code: string; message: string } };
        assert(["invalid_domain", "invalid_body"].includes(body.error.code), JSON.stringify(body));
        assert(body.error.message.length > 5);
      });
    }

    await t.step("malformed JSON is 400, a body over 64 KB is 413, unknown fields are 400", async () => {
      let res = await server.admin("/domains", { method: "POST", body: '{"domain": ' });
      assertEquals(res.status, 400);
      assertEquals((await json(res) as { error: { code: string } }).error.code, "invalid_json");
      res = await server.admin("/domains", {
        method: "POST",
        body: JSON.stringify({ domain: "big.example.com", memo: "x".repeat(70_000) }),
      });
      assertEquals(res.status, 413);
      await res.body?.cancel();
      // Chunked, so no Content-Length warns the server in advance.
      const chunks = new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < 80; i++) c.enqueue(new TextEncoder().encode("x".repeat(1024)));
          c.close();
        },
      });
      res = await server.admin("/domains", { method: "POST", body: chunks });
      assertEquals(res.status, 413);
      await res.body?.cancel();
      res = await server.admin("/domains", {
        method: "POST",
        body: JSON.stringify({ domain: "x.example.com", owner: "me" }),
      });
      assertEquals(res.status, 400);
      await res.body?.cancel();
      res = await server.admin("/domains", { method: "POST", body: "[]" });
      assertEquals(res.status, 400);
      await res.body?.cancel();
    });

    await t.step("lists domains without keys, gets one, 404 for unknown", async () => {
      const list = await json(await server.admin("/domains")) as { domains: Record<string, unknown>[] };
      assertEquals(list.domains.map((d) => d.domain), ["app.example.com", "xn--bcher-kva.example"]);
      assert(list.domains.every((d) => !("client_api_key" in d)));
      const one = await json(await server.admin("/domains/app.example.com"));
      assertEquals(one.id, id);
      assertEquals(one.sessions, []);
      assert(!("client_api_key" in one));
      const missing = await server.admin("/domains/nope.example.com");
      assertEquals(missing.status, 404);
      await missing.body?.cancel();
    });

    await t.step("rotating a key issues a different key", async () => {
      const res = await server.admin("/domains/app.example.com/rotate-key", { method: "POST" });
      assertEquals(res.status, 200);
      const body = await json(res);
      assertMatch(String(body.client_api_key), /^[0-9a-f]{64}$/);
      assertNotEquals(body.client_api_key, key);
      key = String(body.client_api_key);
      const missing = await server.admin("/domains/nope.example.com/rotate-key", { method: "POST" });
      assertEquals(missing.status, 404);
      await missing.body?.cancel();
    });

    await t.step("data survives a server restart", async () => {
      await server.stop();
      server = await start();
      const one = await json(await server.admin("/domains/app.example.com"));
      assertEquals(one.id, id);
      assertEquals(one.memo, "first");
    });

    await t.step("deletes a domain: 204, then 404", async () => {
      let res = await server.admin("/domains/xn--bcher-kva.example", { method: "DELETE" });
      assertEquals(res.status, 204);
      res = await server.admin("/domains/xn--bcher-kva.example", { method: "DELETE" });
      assertEquals(res.status, 404);
      await res.body?.cancel();
    });

    await t.step("the Go HopGate's register and unregister calls", async () => {
      let res = await server.admin("/domains/register", {
        method: "POST",
        body: JSON.stringify({ domain: "legacy.example.com", memo: "go" }),
      });
      assertEquals(res.status, 200);
      const body = await json(res);
      assertEquals(body.success, true);
      assertMatch(String(body.client_api_key), /^[0-9a-f]{64}$/);
      res = await server.admin("/domains/register", {
        method: "POST",
        body: JSON.stringify({ domain: "legacy.example.com", memo: "go" }),
      });
      assertEquals(res.status, 409);
      assertEquals((await json(res)).success, false);
      res = await server.admin("/domains/unregister", {
        method: "POST",
        body: JSON.stringify({ domain: "legacy.example.com", client_api_key: "0".repeat(64) }),
      });
      assertEquals(res.status, 404);
      const wrong = await json(res);
      assertEquals(wrong.success, false);
      assertEquals(typeof wrong.error, "string");
      res = await server.admin("/domains/unregister", {
        method: "POST",
        body: JSON.stringify({ domain: "legacy.example.com", client_api_key: body.client_api_key }),
      });
      assertEquals(res.status, 200);
      assertEquals(await json(res), { success: true });
    });

    await t.step("the OpenAPI document describes every route", async () => {
      const res = await fetch(`${server.httpUrl}/api/v1/openapi.json`, {
        headers: { host: SERVER_DOMAIN },
        client: hostClient(),
      } as RequestInit);
      assertEquals(res.status, 200);
      const doc = await json(res) as { paths: Record<string, unknown> };
      for (
        const p of [
          "/domains",
          "/domains/{domain}",
          "/domains/{domain}/rotate-key",
          "/domains/register",
          "/domains/unregister",
        ]
      ) {
        assert(p in doc.paths, p);
      }
    });

    await t.step("no secret appears in the logs", () => {
      const text = server.proc.lines.map((l) => JSON.stringify(l)).join("\n");
      assert(!text.includes(key), "a client key was logged");
      assert(!text.includes("test-admin-key-0123456789abcdef"), "the admin key was logged");
    });
  } finally {
    await server.stop();
  }
}

Deno.test("admin API on embedded PGlite", async (t) => {
  const dataDir = await makeScratchDir("hopgate-admin-");
  try {
    await suite(t, () => startTestServer({ dataDir, embedded: true }));
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("admin API on PostgreSQL", async (t) => {
  const pg = await startPostgres({ parent: scratchRoot() });
  const dataDir = await makeScratchDir("hopgate-admin-");
  try {
    await suite(t, () => startTestServer({ dataDir, dsn: pg.dsn }));
  } finally {
    await pg.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});
