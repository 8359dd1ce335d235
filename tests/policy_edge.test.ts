/**
 * Access rules enforced at the edge, with real processes (server, client, origin) and curl from chosen
 * loopback addresses: basic auth (401 then 200, the edge password never reaches the origin), an IP deny
 * (403), a rate limit (429 with Retry-After under a burst while another address is served), header
 * rules seen at the origin and at the browser. A denied request never reaches the client.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { type TunnelServer, withTunnel } from "./support/tunnel_env.ts";
import { type Origin, startOrigin } from "./support/tunnel_origin.ts";

const DOMAIN = "app.test";

interface Reply {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** curl over HTTPS from `source` (a 127.0.0.x address), with extra arguments. */
async function curlFrom(
  srv: TunnelServer,
  source: string,
  path: string,
  args: string[] = [],
): Promise<Reply> {
  const out = await new Deno.Command("curl", {
    args: [
      "-s",
      "-D",
      "-",
      "--interface",
      source,
      "--cacert",
      srv.caFile,
      "--resolve",
      `${DOMAIN}:${srv.httpsPort}:127.0.0.1`,
      ...args,
      srv.url(DOMAIN, path),
    ],
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const split = text.indexOf("\r\n\r\n");
  const head = text.slice(0, split).split("\r\n");
  const headers = new Map<string, string>();
  for (const l of head.slice(1)) {
    const i = l.indexOf(":");
    headers.set(l.slice(0, i).toLowerCase(), l.slice(i + 1).trim());
  }
  return { status: Number(head[0].split(" ")[1]), headers, body: text.slice(split + 4) };
}

async function putPolicy(srv: TunnelServer, policy: unknown): Promise<void> {
  const res = await srv.admin(`/domains/${DOMAIN}/policy`, { method: "PUT", body: JSON.stringify(policy) });
  assertEquals(res.status, 200, await res.text());
}

Deno.test("access rules at the edge: basic auth, IP deny, rate limit, header rules", async (t) => {
  const origin: Origin = startOrigin("policy");
  try {
    await withTunnel({ domain: DOMAIN, target: origin.target }, async ({ srv: s, client }) => {
      const hits = () => client.requests().length;

      await t.step(
        "basic auth: 401 with a challenge, then 200 with the password, which the origin never sees",
        async () => {
          await putPolicy(s, { basic_auth: [{ username: "ann", password: "s3cret-pass" }] });
          const before = hits();
          const denied = await curlFrom(s, "127.0.0.2", "/headers");
          assertEquals(denied.status, 401);
          assertMatch(denied.headers.get("www-authenticate") ?? "", /^Basic realm=/);
          const wrong = await curlFrom(s, "127.0.0.2", "/headers", ["-u", "ann:nope"]);
          assertEquals(wrong.status, 401);
          assertEquals(hits(), before, "denied requests never reached the client");
          const ok = await curlFrom(s, "127.0.0.2", "/headers", ["-u", "ann:s3cret-pass"]);
          assertEquals(ok.status, 200);
          assertEquals(JSON.parse(ok.body).authorization, undefined, "the edge consumed the credentials");
        },
      );

      await t.step("IP deny: 403 for the listed address, others served", async () => {
        await putPolicy(s, { ip_deny: ["127.0.0.3/32"] });
        assertEquals((await curlFrom(s, "127.0.0.3", "/who")).status, 403);
        assertEquals((await curlFrom(s, "127.0.0.4", "/who")).status, 200);
      });

      await t.step(
        "rate limit: a burst from one address gets 429 with Retry-After; another address is served",
        async () => {
          await putPolicy(s, { rate_limit: { per_second: 2, burst: 3 } });
          const statuses: number[] = [];
          let retryAfter = "";
          for (let i = 0; i < 8; i++) {
            const r = await curlFrom(s, "127.0.0.5", "/who");
            statuses.push(r.status);
            if (r.status === 429) retryAfter = r.headers.get("retry-after") ?? "";
          }
          assertEquals(statuses.slice(0, 3), [200, 200, 200]);
          assert(statuses.slice(3).includes(429), `statuses ${statuses}`);
          assertMatch(retryAfter, /^\d+$/);
          assertEquals((await curlFrom(s, "127.0.0.6", "/who")).status, 200, "another address is served");
        },
      );

      await t.step("header rules: added and removed at the origin and at the browser", async () => {
        await putPolicy(s, {
          request_headers: { add: { "x-edge": "on" }, remove: ["x-drop-me"] },
          response_headers: { add: { "x-frame-options": "DENY" }, remove: ["x-request-id"] },
        });
        const r = await curlFrom(s, "127.0.0.7", "/headers", ["-H", "x-drop-me: 1", "-H", "x-keep: 1"]);
        assertEquals(r.status, 200);
        const seen = JSON.parse(r.body);
        assertEquals([seen["x-edge"], seen["x-drop-me"], seen["x-keep"]], ["on", undefined, "1"]);
        assertEquals(r.headers.get("x-frame-options"), "DENY");
        assertEquals(r.headers.get("x-request-id"), undefined);
      });

      await t.step("DELETE removes the rules", async () => {
        const res = await s.admin(`/domains/${DOMAIN}/policy`, { method: "DELETE" });
        assertEquals(res.status, 204);
        assertEquals((await curlFrom(s, "127.0.0.3", "/who")).status, 200);
      });
    });
  } finally {
    await origin.close();
  }
});
