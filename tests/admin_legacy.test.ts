/**
 * The Go HopGate's register/unregister calls answer errors in the Go server's shape
 * (`{success:false,error}`) from their own sub-app; every other admin route keeps `{error:{code,message}}`.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { openDatabase } from "../db/open.ts";
import { createDomainStore } from "../db/domains.ts";
import { createKeySealer } from "../db/key_seal.ts";
import { createApiRoutes } from "../lib/admin/app.ts";
import { makeScratchDir } from "./support/scratch.ts";

const KEY = "legacy-admin-key-0123456789abcdef";

Deno.test("admin API: Go-compatible calls have their own error shape, other routes the standard one", async (t) => {
  const dataDir = await makeScratchDir("hopgate-legacy-");
  const database = await openDatabase({ dataDir });
  try {
    const store = createDomainStore(database.db, createKeySealer(crypto.getRandomValues(new Uint8Array(32))));
    const api = createApiRoutes({ store, adminApiKey: KEY, serverDomain: "hop.test" });
    const call = async (method: string, path: string, body?: string, key = KEY) => {
      const res = await api.request(`/admin${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body,
      });
      return { status: res.status, json: await res.json() as Record<string, unknown> };
    };
    const goShape = (r: { json: Record<string, unknown> }) =>
      r.json.success === false && typeof r.json.error === "string";
    const standard = (r: { json: Record<string, unknown> }, code: string) =>
      (r.json.error as { code?: string } | undefined)?.code === code;

    await t.step("register and unregister errors in the Go shape", async () => {
      let r = await call("POST", "/domains/register", "{not json");
      assertEquals(r.status, 400);
      assert(goShape(r), JSON.stringify(r.json));
      r = await call("POST", "/domains/register", JSON.stringify({ domain: "hop.test" }));
      assertEquals(r.status, 400);
      assert(goShape(r), JSON.stringify(r.json));
      r = await call(
        "POST",
        "/domains/register",
        JSON.stringify({ domain: "go.test", memo: "x".repeat(70_000) }),
      );
      assertEquals(r.status, 413);
      assert(goShape(r), JSON.stringify(r.json));
      r = await call("POST", "/domains/register", JSON.stringify({ domain: "go.test" }));
      assertEquals(r.status, 200);
      assertEquals(r.json.success, true);
      r = await call("POST", "/domains/register", JSON.stringify({ domain: "go.test" }));
      assertEquals(r.status, 409);
      assert(goShape(r), JSON.stringify(r.json));
      r = await call(
        "POST",
        "/domains/unregister",
        JSON.stringify({ domain: "go.test", client_api_key: "0".repeat(64) }),
      );
      assertEquals(r.status, 404);
      assert(goShape(r), JSON.stringify(r.json));
    });

    await t.step(
      "the other routes keep the standard shape, and a wrong key is the one 401 everywhere",
      async () => {
        let r = await call("POST", "/domains", "{not json");
        assertEquals(r.status, 400);
        assert(standard(r, "invalid_json"), JSON.stringify(r.json));
        r = await call("POST", "/domains", JSON.stringify({ domain: "go.test" }));
        assertEquals(r.status, 409);
        assert(standard(r, "domain_taken"), JSON.stringify(r.json));
        // Not a Go call: GET on the path is the domain route, whose errors are standard.
        r = await call("GET", "/domains/register");
        assert(standard(r, "not_found") || standard(r, "invalid_domain"), JSON.stringify(r.json));
        r = await call("POST", "/domains/register", JSON.stringify({ domain: "other.test" }), "wrong");
        assertEquals(r.status, 401);
        assert(standard(r, "unauthorized"), JSON.stringify(r.json));
      },
    );
  } finally {
    await database.close();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
