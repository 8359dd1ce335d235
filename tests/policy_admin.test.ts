/**
 * The policy routes of the admin API over a real embedded database (PGlite, all migrations):
 * validation, hashing on the way in, never returning a hash, PUT replacing, DELETE, the change
 * callback, the OpenAPI document, and the denial counter in the metrics.
 */
import bcrypt from "bcryptjs";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { openDatabase } from "../db/open.ts";
import { createDomainStore } from "../db/domains.ts";
import { createKeySealer } from "../db/key_seal.ts";
import { createPolicyStore, type PolicyChange } from "../db/policies.ts";
import { createApiRoutes } from "../lib/admin/app.ts";
import { checkRequest, compilePolicy } from "../lib/proxy/policy.ts";
import { createMetrics } from "../lib/metrics/metrics.ts";
import { startTestServer } from "./support/server.ts";
import { createPolicyBook } from "../lib/proxy/policy_book.ts";
import { makeScratchDir } from "./support/scratch.ts";

const KEY = "policy-admin-key-0123456789abcdef";

Deno.test("admin policy API on PGlite: validation, hashed passwords never returned, PUT replaces, DELETE", async (t) => {
  const dataDir = await makeScratchDir("hopgate-policy-");
  const database = await openDatabase({ dataDir });
  try {
    const domains = createDomainStore(
      database.db,
      createKeySealer(crypto.getRandomValues(new Uint8Array(32))),
    );
    const policies = createPolicyStore(database.db);
    const changes: PolicyChange[] = [];
    policies.onChange((c) => changes.push(c));
    const api = createApiRoutes({ store: domains, policies, adminApiKey: KEY, serverDomain: "hop.test" });
    const call = (method: string, path: string, body?: unknown, key = KEY) =>
      api.request(`/admin${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      });
    await domains.register("app.test", "");
    const full = {
      basic_auth: [{ username: "ann", password: "correct horse" }, { username: "bob", password: "battery" }],
      ip_allow: ["10.0.0.0/8", "2001:db8::/32"],
      ip_deny: ["10.9.0.0/16"],
      rate_limit: { per_second: 5, burst: 10 },
      request_headers: { add: { "X-Edge": "1" }, remove: ["Cookie"] },
      response_headers: { add: { "X-Frame-Options": "DENY" }, remove: ["Server"] },
    };

    await t.step("unknown domain 404, no policy 404, wrong admin key 401", async () => {
      assertEquals((await call("PUT", "/domains/none.test/policy", {})).status, 404);
      assertEquals((await call("GET", "/domains/app.test/policy")).status, 404);
      assertEquals((await call("DELETE", "/domains/app.test/policy")).status, 404);
      assertEquals((await call("GET", "/domains/app.test/policy", undefined, "wrong")).status, 401);
      assertEquals((await call("GET", "/domains/not_a_domain/policy")).status, 400);
    });

    await t.step("invalid bodies are 400 naming the field", async () => {
      const cases: [unknown, RegExp][] = [
        ["{not json", /JSON/i],
        [{ extra: 1 }, /extra|unrecognized/i],
        [{ ip_allow: ["10.0.0.0/33"] }, /ip_allow\.0: prefix length must be 0 to 32/],
        [{ ip_deny: ["example.com"] }, /ip_deny\.0: .*not an IPv4 or IPv6 address/],
        [{ rate_limit: { per_second: 0, burst: 1 } }, /rate_limit\.per_second: must be above 0/],
        [{ rate_limit: { per_second: 1, burst: 1.5 } }, /rate_limit\.burst: must be a whole number/],
        [{ basic_auth: [{ username: "a", password: "" }] }, /basic_auth\.0\.password: must not be empty/],
        [{ basic_auth: [{ username: "a:b", password: "x" }] }, /must not contain ':'/],
        [{ basic_auth: [{ username: "a", password: "x" }, { username: "a", password: "y" }] }, /unique/],
        [{ request_headers: { add: { "Bad Name": "x" } } }, /header name token/],
        [{ response_headers: { remove: ["Content-Length"] } }, /framing header/],
        [{ request_headers: { add: { "X-A": "a\r\nX-Injected: 1" } } }, /CR, LF or NUL/],
      ];
      for (const [body, message] of cases) {
        const res = await call("PUT", "/domains/app.test/policy", body);
        const text = await res.text();
        assertEquals(res.status, 400, `${JSON.stringify(body)} → ${text}`);
        assertMatch(text, message);
        assertMatch(text, /"code":"invalid_body"|"code":"invalid_json"|"code":"[a-z_]+"/);
      }
      assertEquals(changes.length, 0, "nothing stored");
    });

    await t.step("PUT stores bcrypt hashes; neither the password nor the hash ever comes back", async () => {
      const res = await call("PUT", "/domains/app.test/policy", full);
      const text = await res.text();
      assertEquals(res.status, 200, text);
      assert(!text.includes("correct horse") && !text.includes("$2"), text);
      const body = JSON.parse(text);
      assertEquals(body.policy.basic_auth, [{ username: "ann" }, { username: "bob" }]);
      assertEquals(body.policy.rate_limit, { per_second: 5, burst: 10 });
      assertEquals(body.policy.ip_allow, full.ip_allow);
      const got = await call("GET", "/domains/app.test/policy");
      const gotText = await got.text();
      assertEquals(JSON.parse(gotText).policy, body.policy);
      assert(!gotText.includes("$2") && !gotText.includes("password"), gotText);
      const stored = (await policies.load("app.test"))!;
      const ann = stored.policy.basic_auth![0];
      assertMatch(ann.password_hash, /^\$2[aby]\$10\$/);
      assert(!JSON.stringify(stored).includes("correct horse"), "no plain text in the database");
      assert(await bcrypt.compare("correct horse", ann.password_hash));
      assertEquals(changes.at(-1)?.domain, "app.test");
      // What the API stored is what the edge enforces.
      const p = compilePolicy(stored.policy);
      const auth = `Basic ${btoa("ann:correct horse")}`;
      assert(
        (await checkRequest(p, { remoteAddr: "10.1.1.1", headers: [["Authorization", auth]] }, 0)).allow,
      );
      const d = await checkRequest(p, { remoteAddr: "10.9.1.1", headers: [["Authorization", auth]] }, 0);
      assertEquals(d.allow ? 0 : d.status, 403);
    });

    await t.step(
      "the policy book follows this server's changes at once and another server's on reload",
      async () => {
        const book = await createPolicyBook(policies);
        const other = createPolicyStore(database.db);
        try {
          assertEquals(book.get("app.test")?.stored.ip_deny, full.ip_deny, "loaded at start");
          await call("PUT", "/domains/app.test/policy", { ip_deny: ["198.51.100.0/24"] });
          assertEquals(book.get("app.test")?.stored.ip_deny, ["198.51.100.0/24"], "applied without a reload");
          await other.put("app.test", { ip_deny: ["203.0.113.0/24"] });
          assertEquals(
            book.get("app.test")?.stored.ip_deny,
            ["198.51.100.0/24"],
            "another server's write is unseen",
          );
          await book.reload("app.test");
          assertEquals(book.get("app.test")?.stored.ip_deny, ["203.0.113.0/24"]);
          await other.remove("app.test");
          await book.reload("app.test");
          assertEquals(book.get("app.test"), undefined);
          await call("PUT", "/domains/app.test/policy", full);
        } finally {
          book.close();
        }
      },
    );

    await t.step("PUT replaces the whole policy; burst defaults from per_second", async () => {
      const res = await call("PUT", "/domains/app.test/policy", {
        ip_deny: ["192.0.2.0/24"],
        rate_limit: { per_second: 2.5 },
      });
      assertEquals(res.status, 200);
      const body = await res.json();
      assertEquals(body.policy, { ip_deny: ["192.0.2.0/24"], rate_limit: { per_second: 2.5, burst: 3 } });
      assertEquals((await policies.all()).length, 1);
      assertEquals((await policies.load("app.test"))!.policy.basic_auth, undefined);
    });

    await t.step("DELETE removes it (204, then 404); removing the domain removes its policy", async () => {
      assertEquals((await call("DELETE", "/domains/app.test/policy")).status, 204);
      assertEquals((await call("GET", "/domains/app.test/policy")).status, 404);
      assertEquals(changes.at(-1), { domain: "app.test", policy: null });
      assertEquals((await call("PUT", "/domains/app.test/policy", { ip_deny: ["::1"] })).status, 200);
      assertEquals((await call("DELETE", "/domains/app.test")).status, 204);
      assertEquals(await policies.load("app.test"), null);
    });

    await t.step("the OpenAPI document describes the routes", async () => {
      const doc = await (await api.request("/openapi.json")).json();
      const path = doc.paths["/domains/{domain}/policy"];
      assert(path.get && path.put && path.delete);
      assert(doc.components.schemas.PolicyInput.properties.basic_auth);
      assertEquals(
        doc.components.schemas.PolicyInput.properties.basic_auth.items.properties.password.writeOnly,
        true,
      );
    });
  } finally {
    await database.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("metrics: policy denials are counted by domain and reason", async () => {
  const m = createMetrics({});
  m.observePolicyDenial("app.test", "rate_limit");
  m.observePolicyDenial("app.test", "rate_limit");
  m.observePolicyDenial("app.test", "basic_auth");
  const text = await m.text();
  assertMatch(text, /hopgate_policy_denials_total\{domain="app.test",reason="rate_limit"\} 2/);
  assertMatch(text, /hopgate_policy_denials_total\{domain="app.test",reason="basic_auth"\} 1/);
});

Deno.test("server process: the policy routes are served by the real server and kept across a restart", async () => {
  const dataDir = await makeScratchDir("hopgate-policy-srv-");
  let server = await startTestServer({ dataDir });
  try {
    const json = { "content-type": "application/json" };
    assertEquals(
      (await server.admin("/domains", {
        method: "POST",
        headers: json,
        body: JSON.stringify({ domain: "srv.test" }),
      }))
        .status,
      201,
    );
    const put = await server.admin("/domains/srv.test/policy", {
      method: "PUT",
      headers: json,
      body: JSON.stringify({ basic_auth: [{ username: "ann", password: "pw" }], ip_deny: ["2001:db8::/32"] }),
    });
    assertEquals(put.status, 200, await put.clone().text());
    assert(server.proc.lines.some((l) => l.msg === "policy replaced" && l.domain === "srv.test"), "logged");
    await server.stop();
    server = await startTestServer({ dataDir });
    const got = await server.admin("/domains/srv.test/policy");
    assertEquals(got.status, 200);
    assertEquals((await got.json()).policy, {
      basic_auth: [{ username: "ann" }],
      ip_deny: ["2001:db8::/32"],
    });
  } finally {
    await server.stop();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
