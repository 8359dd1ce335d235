/** Configuration of secrets: the client key from a file, the server secret with PostgreSQL, admin key strength. */
import { assert, assertEquals, assertMatch, assertThrows } from "./support/assert.ts";
import { loadClientConfig } from "../lib/config/client_config.ts";
import { loadServerConfig } from "../lib/config/server_config.ts";
import { ConfigError } from "../lib/config/options.ts";
import { keyStrength } from "../lib/config/key_strength.ts";

const KEY = "0123456789abcdef".repeat(4);
const CLIENT = {
  HOP_CLIENT_SERVER_ADDR: "hop.example.com:443",
  HOP_CLIENT_DOMAIN: "app.example.com",
  HOP_CLIENT_LOCAL_TARGET: "127.0.0.1:3000",
};
const NO_FILE = "/nonexistent/.env";

function problem(fn: () => unknown): string {
  return assertThrows(fn, ConfigError).problems.map((p) => `${p.variable} ${p.message}`).join("\n");
}

Deno.test("client config: the key comes from HOP_CLIENT_API_KEY_FILE or --api-key-file", async () => {
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, `${KEY.toUpperCase()}\n`);
    const env = { ...CLIENT, HOP_CLIENT_API_KEY_FILE: file };
    assertEquals(loadClientConfig({ args: [], env, envFile: NO_FILE }).config.apiKey, KEY);
    const flag = loadClientConfig({ args: [`--api-key-file=${file}`], env: CLIENT, envFile: NO_FILE });
    assertEquals(flag.config.apiKey, KEY);
    assertMatch(
      problem(() =>
        loadClientConfig({ args: [], env: { ...env, HOP_CLIENT_API_KEY: KEY }, envFile: NO_FILE })
      ),
      /^HOP_CLIENT_API_KEY_FILE and HOP_CLIENT_API_KEY are both set/,
    );
    await Deno.writeTextFile(file, "not a key");
    assertMatch(
      problem(() => loadClientConfig({ args: [], env, envFile: NO_FILE })),
      /^HOP_CLIENT_API_KEY_FILE .* must be 64 hex/,
    );
    const gone = { ...CLIENT, HOP_CLIENT_API_KEY_FILE: `${file}.missing` };
    assertMatch(problem(() => loadClientConfig({ args: [], env: gone, envFile: NO_FILE })), /cannot be read/);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("server config: HOP_SECRET_KEY is required with HOP_DB_DSN and must be 64 hex", () => {
  const env = {
    HOP_SERVER_DOMAIN: "hop.example.com",
    HOP_ADMIN_API_KEY: "0123456789abcdef0123",
    HOP_DB_DSN: "postgres://hop:pw@127.0.0.1:5432/hop",
  };
  assertMatch(
    problem(() => loadServerConfig({ args: [], env, envFile: NO_FILE })),
    /^HOP_SECRET_KEY is required with HOP_DB_DSN/,
  );
  assertMatch(
    problem(() => loadServerConfig({ args: [], env: { ...env, HOP_SECRET_KEY: "abc" }, envFile: NO_FILE })),
    /^HOP_SECRET_KEY must be 64 hex/,
  );
  const ok = loadServerConfig({ args: [], env: { ...env, HOP_SECRET_KEY: KEY }, envFile: NO_FILE });
  assertEquals(ok.config.secretKey, KEY);
});

Deno.test("admin key strength: repeats and tiny alphabets fail, random keys pass", () => {
  for (const weak of ["aaaaaaaaaaaaaaaa", "abababababababababab", "passwordpassword", "1111222233334444"]) {
    assert(keyStrength(weak).problem !== null, weak);
  }
  for (let i = 0; i < 50; i++) {
    const hex = Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0"))
      .join("");
    assertEquals(keyStrength(hex).problem, null, hex);
  }
  assertEquals(keyStrength("test-admin-key-0123456789abcdef").problem, null);
});
