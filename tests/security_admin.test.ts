/**
 * Attacks on the admin API and the plain-HTTP port of a real server process: bearer-key brute
 * force, weak admin keys, malformed paths, and redirects to hosts the server does not serve.
 */
import { assert, assertEquals, assertMatch, assertNotEquals } from "./support/assert.ts";
import { ADMIN_KEY, SERVER_DOMAIN, startTestServer } from "./support/server.ts";
import { runToEnd } from "./support/process.ts";
import { makeScratchDir } from "./support/scratch.ts";

/** curl from a chosen loopback source address; returns status and headers. */
async function curlFrom(
  bind: string,
  url: string,
  key: string,
): Promise<{ status: number; headers: string }> {
  const out = await new Deno.Command("curl", {
    args: [
      "-s",
      "-o",
      "/dev/null",
      "-D",
      "-",
      "--interface",
      bind,
      "-H",
      `authorization: Bearer ${key}`,
      "-H",
      `host: ${SERVER_DOMAIN}`,
      url,
    ],
  }).output();
  const headers = new TextDecoder().decode(out.stdout);
  return { status: Number(/^HTTP\/[\d.]+ (\d+)/.exec(headers)?.[1] ?? 0), headers };
}

Deno.test("wrong admin keys past a burst get 429 with Retry-After, logged at warn with the address", async () => {
  const dataDir = await makeScratchDir("hopgate-sec-admin-");
  const server = await startTestServer({ dataDir });
  try {
    const url = `${server.httpUrl}/api/v1/admin/domains`;
    const statuses: number[] = [];
    let retryAfter = "";
    for (let i = 0; i < 30; i++) {
      const r = await curlFrom("127.0.0.3", url, `wrong-key-${i}-0123456789abcdef`);
      statuses.push(r.status);
      retryAfter ||= /retry-after: (\d+)/i.exec(r.headers)?.[1] ?? "";
    }
    assertEquals(statuses.slice(0, 10), Array(10).fill(401));
    assertEquals(statuses.slice(10), Array(20).fill(429));
    assert(Number(retryAfter) >= 1, `Retry-After: ${retryAfter}`);
    // The right key from that address waits too (no oracle while limited); from another it works.
    assertEquals((await curlFrom("127.0.0.3", url, ADMIN_KEY)).status, 429);
    assertEquals((await curlFrom("127.0.0.4", url, ADMIN_KEY)).status, 200);
    const warns = server.proc.lines.filter((l) =>
      l.level === "warn" && l.msg === "admin: authentication failed"
    );
    assertEquals(warns.length, 10);
    assertEquals(warns[0].address, "127.0.0.3");
    assert(!JSON.stringify(server.proc.lines).includes("wrong-key-0-"), "a tried key reached the log");
    const metrics = await (await fetch(`http://${server.ready.metrics}/metrics`)).text();
    assertMatch(metrics, /hopgate_admin_auth_failures_total\{result="unauthorized"\} 10/);
    assertMatch(metrics, /hopgate_admin_auth_failures_total\{result="rate_limited"\} 21/);
  } finally {
    await server.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a domain path that is not valid percent-encoding is a 400, not a 500", async () => {
  const dataDir = await makeScratchDir("hopgate-sec-admin-");
  const server = await startTestServer({ dataDir });
  try {
    for (const path of ["/domains/%ZZ", "/domains/%E0%A4%A", "/domains/%ZZ/rotate-key"]) {
      const res = await server.admin(path, { method: path.endsWith("key") ? "POST" : "GET" });
      assertEquals(res.status, 400, path);
      assertEquals((await res.json()).error.code, "invalid_domain");
    }
  } finally {
    await server.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a low-entropy admin key refuses to start with how to make a good one; --help shows a fresh random example", async () => {
  const env = { HOP_SERVER_DOMAIN: "hop.test", HOP_SERVER_TLS_MODE: "off" };
  for (const weak of ["aaaaaaaaaaaaaaaa", "passwordpassword", "5f4dcc3b5aa765d61d8327deb882cf99"]) {
    const r = await runToEnd("server.ts", [], { ...env, HOP_ADMIN_API_KEY: weak });
    assertEquals(r.code, 2, weak);
    assertMatch(r.stderr, /HOP_ADMIN_API_KEY .*openssl rand -hex 32 \(for example [0-9a-f]{64}\)/);
    assert(!r.stderr.includes(weak), "the refused key was printed");
  }
  const examples: string[] = [];
  for (let i = 0; i < 2; i++) {
    const help = await runToEnd("server.ts", ["--help"], {});
    assertEquals(help.code, 0);
    const m = /--admin-api-key=([0-9a-f]{64})/.exec(help.stdout);
    assert(m, help.stdout);
    examples.push(m[1]);
  }
  assertNotEquals(examples[0], examples[1]);
});

Deno.test("the HTTP port redirects only the hosts the server serves; others get the 404 page", async () => {
  const dataDir = await makeScratchDir("hopgate-sec-redirect-");
  const server = await startTestServer({ dataDir, env: { HOP_SERVER_TLS_MODE: "self-signed" } });
  try {
    const httpsPort = String(server.ready.https).split(":").pop();
    // curl, not fetch: fetch sets Host from the URL whatever the headers say.
    const get = async (host: string) => {
      const out = await new Deno.Command("curl", {
        args: ["-s", "-o", "/dev/null", "-D", "-", "-H", `host: ${host}`, `${server.httpUrl}/some/path?q=1`],
      }).output();
      const head = new TextDecoder().decode(out.stdout);
      return {
        status: Number(/^HTTP\/[\d.]+ (\d+)/.exec(head)?.[1]),
        location: /location: (\S+)/i.exec(head)?.[1],
      };
    };
    const own = await get("hop.test");
    assertEquals(own.status, 308);
    assertEquals(own.location, `https://hop.test:${httpsPort}/some/path?q=1`);
    const evil = await get("evil.example.net");
    assertEquals(evil.status, 404);
    assertEquals(evil.location, undefined);
  } finally {
    await server.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});
