/** The client's server list: configuration, name expansion to every A/AAAA record, the cap. */
import { assertEquals, assertMatch, assertThrows } from "./support/assert.ts";
import { loadClientConfig } from "../lib/config/client_config.ts";
import { ConfigError } from "../lib/config/options.ts";
import { expandServers } from "../lib/proxy/multi_client.ts";

const ENV = {
  HOP_CLIENT_DOMAIN: "app.example.com",
  HOP_CLIENT_API_KEY: "ab".repeat(32),
  HOP_CLIENT_LOCAL_TARGET: "127.0.0.1:3000",
};
const load = (env: Record<string, string>) =>
  loadClientConfig({ args: [], env: { ...ENV, ...env }, envFile: "/nonexistent/.env" }).config;

Deno.test("client config: one address, a comma-separated list, and HOP_CLIENT_MAX_SESSIONS", () => {
  const one = load({ HOP_CLIENT_SERVER_ADDR: "hop.example.com:443" });
  assertEquals(one.serverAddr, { hostname: "hop.example.com", port: 443 });
  assertEquals(one.serverAddrs, [{ hostname: "hop.example.com", port: 443 }]);
  assertEquals(one.maxSessions, 4);
  const many = load({
    HOP_CLIENT_SERVER_ADDR: "10.0.0.1:443, [2001:db8::1]:8443",
    HOP_CLIENT_MAX_SESSIONS: "2",
  });
  assertEquals(many.serverAddrs, [{ hostname: "10.0.0.1", port: 443 }, {
    hostname: "2001:db8::1",
    port: 8443,
  }]);
  assertEquals(many.serverAddr, { hostname: "10.0.0.1", port: 443 });
  assertEquals(many.maxSessions, 2);
  for (
    const [env, pattern] of [
      [{ HOP_CLIENT_SERVER_ADDR: "10.0.0.1:443,nope" }, /HOP_CLIENT_SERVER_ADDR "nope" must be host:port/],
      [
        { HOP_CLIENT_SERVER_ADDR: "a:1", HOP_CLIENT_MAX_SESSIONS: "0" },
        /HOP_CLIENT_MAX_SESSIONS must be a whole/,
      ],
    ] as const
  ) {
    const e = assertThrows(() => load(env), (e) => e instanceof ConfigError) as ConfigError;
    assertMatch(e.problems.map((p) => `${p.variable} ${p.message}`).join("\n"), pattern);
  }
});

Deno.test("expandServers: every record of a name, IPs as given, deduplicated, capped", async () => {
  const records: Record<string, string[]> = {
    "hop.example.com": ["192.0.2.1", "192.0.2.2", "2001:db8::3"],
    "down.example.com": [],
  };
  const resolve = (h: string) => Promise.resolve(records[h] ?? []);
  assertEquals(
    await expandServers([{ hostname: "hop.example.com", port: 443 }], 4, resolve),
    [
      { hostname: "192.0.2.1", port: 443 },
      { hostname: "192.0.2.2", port: 443 },
      { hostname: "2001:db8::3", port: 443 },
    ],
  );
  assertEquals(
    (await expandServers(
      [{ hostname: "192.0.2.2", port: 443 }, { hostname: "hop.example.com", port: 443 }],
      3,
      resolve,
    )).map((a) => a.hostname),
    ["192.0.2.2", "192.0.2.1", "2001:db8::3"],
  );
  // A name without records (or whose lookup fails) is dialled as is: the tunnel loop retries it.
  assertEquals(
    await expandServers([{ hostname: "down.example.com", port: 443 }], 4, resolve),
    [{ hostname: "down.example.com", port: 443 }],
  );
  assertEquals(
    await expandServers(
      [{ hostname: "x.example.com", port: 1 }],
      4,
      () => Promise.reject(new Error("SERVFAIL")),
    ),
    [{ hostname: "x.example.com", port: 1 }],
  );
  assertEquals((await expandServers([{ hostname: "hop.example.com", port: 443 }], 1, resolve)).length, 1);
});
