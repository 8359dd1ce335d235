/** ACME configuration: the default TLS mode by server domain, directory aliases, and errors that name the variable. */
import { assertEquals, assertMatch, assertThrows } from "./support/assert.ts";
import {
  isPublicDomain,
  LETS_ENCRYPT,
  LETS_ENCRYPT_STAGING,
  loadServerConfig,
} from "../lib/config/server_config.ts";
import { ConfigError } from "../lib/config/options.ts";

const NO_FILE = "/nonexistent/.env";
const load = (env: Record<string, string>) =>
  loadServerConfig({
    args: [],
    env: { HOP_SERVER_DOMAIN: "hop.example.io", HOP_ADMIN_API_KEY: "0123456789abcdef0123", ...env },
    envFile: NO_FILE,
  }).config;

Deno.test("acme config: a public server domain defaults to acme mode with Let's Encrypt production", () => {
  const c = load({});
  assertEquals(c.tlsMode, "acme");
  assertEquals(c.acmeDirectoryUrl, LETS_ENCRYPT);
  assertEquals(c.acmeEmail, undefined);
  assertEquals(c.acmeCaFile, undefined);
});

Deno.test("acme config: local and reserved names default to self-signed", () => {
  for (
    const domain of ["hop.localhost", "hop.test", "printer.local", "hop.internal", "a.example", "x.invalid"]
  ) {
    assertEquals(load({ HOP_SERVER_DOMAIN: domain }).tlsMode, "self-signed", domain);
  }
  for (const domain of ["hop.example.com", "nas.home.arpa"]) {
    assertEquals(isPublicDomain(domain), false, domain);
  }
  for (const domain of ["hop.example.io", "tunnel.company.co.uk"]) {
    assertEquals(isPublicDomain(domain), true, domain);
  }
});

Deno.test("acme config: an explicit mode wins over the default", () => {
  assertEquals(load({ HOP_SERVER_TLS_MODE: "self-signed" }).tlsMode, "self-signed");
  assertEquals(load({ HOP_SERVER_DOMAIN: "hop.test", HOP_SERVER_TLS_MODE: "acme" }).tlsMode, "acme");
  assertEquals(load({ HOP_SERVER_TLS_MODE: "off" }).tlsMode, "off");
});

Deno.test("acme config: letsencrypt-staging names the staging directory; a URL is taken as is", () => {
  assertEquals(
    load({ HOP_ACME_DIRECTORY_URL: "letsencrypt-staging" }).acmeDirectoryUrl,
    LETS_ENCRYPT_STAGING,
  );
  const url = "https://127.0.0.1:14000/dir";
  const c = load({
    HOP_ACME_DIRECTORY_URL: url,
    HOP_ACME_EMAIL: "ops@example.io",
    HOP_ACME_CA_FILE: "/ca.pem",
  });
  assertEquals([c.acmeDirectoryUrl, c.acmeEmail, c.acmeCaFile], [url, "ops@example.io", "/ca.pem"]);
});

Deno.test("acme config: a bad directory or e-mail names the variable and a valid value", () => {
  const e = assertThrows(
    () => load({ HOP_ACME_DIRECTORY_URL: "lets-encrypt", HOP_ACME_EMAIL: "nobody" }),
    (e) => e instanceof ConfigError,
  ) as ConfigError;
  const lines = e.problems.map((p) => `${p.variable} ${p.message}`);
  assertEquals(lines.length, 2, lines.join("\n"));
  assertMatch(
    lines.find((l) => l.startsWith("HOP_ACME_DIRECTORY_URL"))!,
    /https:\/\/ URL.*letsencrypt-staging/,
  );
  assertMatch(lines.find((l) => l.startsWith("HOP_ACME_EMAIL"))!, /e-mail address.*got "nobody"/);
});
