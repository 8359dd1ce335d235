/**
 * The edge's access rules as a pure evaluator: CIDR matching (IPv4, IPv6, IPv4-mapped), IP deny and
 * allow, per-address token buckets with bursts and bounded memory, basic auth with its cache, and
 * header rules.
 */
import bcrypt from "bcryptjs";
import { assert, assertEquals } from "./support/assert.ts";
import { cidrContains, parseCidr, parseIp } from "../lib/config/cidr.ts";
import {
  applyHeaderEdits,
  applyResponseHeaders,
  checkRequest,
  clientAddress,
  compilePolicy,
  denialText,
  type PolicyDecision,
} from "../lib/proxy/policy.ts";
import { createRateLimiter } from "../lib/proxy/policy_rate.ts";
import { seededRandom } from "../lib/testing/seeded_random.ts";

const inBlock = (cidr: string, ip: string) => {
  const c = parseCidr(cidr);
  if (typeof c === "string") throw new Error(c);
  const a = parseIp(ip);
  if (!a) throw new Error(`bad ip ${ip}`);
  return cidrContains(c, a);
};
const denied = (
  d: PolicyDecision,
) => (d.allow ? null : { status: d.status, reason: d.reason, headers: d.headers });

Deno.test("CIDR: IPv4, IPv6 and IPv4-mapped IPv6 blocks and addresses", () => {
  assert(inBlock("10.0.0.0/8", "10.255.1.2"));
  assert(!inBlock("10.0.0.0/8", "11.0.0.1"));
  assert(inBlock("10.0.0.0/8", "::ffff:10.1.2.3"), "an IPv4 rule matches an IPv4-mapped peer");
  assert(inBlock("::ffff:192.0.2.0/120", "192.0.2.77"), "and the other way round");
  assert(inBlock("192.0.2.7", "192.0.2.7") && !inBlock("192.0.2.7", "192.0.2.8"), "a bare address is a /32");
  assert(
    inBlock("0.0.0.0/0", "203.0.113.9") && !inBlock("0.0.0.0/0", "2001:db8::1"),
    "/0 of IPv4 is all IPv4 only",
  );
  assert(inBlock("::/0", "2001:db8::1") && inBlock("::/0", "1.2.3.4"));
  assert(inBlock("2001:db8::/32", "2001:db8:ffff::1"));
  assert(!inBlock("2001:db8::/32", "2001:db9::1"));
  assert(
    inBlock("2001:db8:0:1::/63", "2001:db8:0:1:ffff::1") && !inBlock("2001:db8:0:2::/63", "2001:db8:0:1::1"),
  );
  assert(inBlock("fe80::/10", "[fe80::1%eth0]"), "brackets and zone ids are accepted");
  assert(inBlock("2001:db8::1:0:0:1", "2001:DB8:0:0:1::1"), "one address, two spellings");
  for (
    const bad of [
      "10.0.0.0/33",
      "10.0.0.256",
      "010.0.0.1",
      "::/129",
      "1::2::3",
      "2001:db8::/x",
      "host.example",
      "",
    ]
  ) {
    assertEquals(typeof parseCidr(bad), "string", bad);
  }
  assertEquals(parseIp("1:2:3:4:5:6:7:8:9"), null);
  assertEquals(parseIp("::ffff:1.2.3"), null);
});

Deno.test("CIDR: random input never throws; random IPv6 addresses round-trip through their text", () => {
  const rand = seededRandom(14);
  const alphabet = "0123456789abcdef:./%[]x ";
  for (let i = 0; i < 20_000; i++) {
    const s = Array.from(
      { length: Math.floor(rand() * 40) },
      () => alphabet[Math.floor(rand() * alphabet.length)],
    ).join("");
    parseCidr(s);
    parseIp(s);
  }
  for (let i = 0; i < 2000; i++) {
    const words = Array.from({ length: 8 }, () => Math.floor(rand() * 65536));
    const ip = parseIp(words.map((w) => w.toString(16)).join(":"))!;
    const back = Array.from({ length: 8 }, (_, j) => (ip[j * 2] << 8) | ip[j * 2 + 1]);
    assertEquals(back, words);
    const bits = Math.floor(rand() * 129);
    const c = parseCidr(`${words.map((w) => w.toString(16)).join(":")}/${bits}`);
    assert(typeof c !== "string" && cidrContains(c, ip), "an address is inside every block made from it");
  }
});

Deno.test("policy: ip_deny refuses with 403 before ip_allow; ip_allow serves only its blocks (IPv6 and mapped too)", async () => {
  const p = compilePolicy({ ip_allow: ["10.0.0.0/8", "2001:db8::/32"], ip_deny: ["10.9.0.0/16"] });
  const check = (remoteAddr: string) => checkRequest(p, { remoteAddr, headers: [] }, 0);
  assertEquals((await check("10.1.2.3")).allow, true);
  assertEquals((await check("::ffff:10.1.2.3")).allow, true);
  assertEquals((await check("2001:db8::42")).allow, true);
  assertEquals(denied(await check("10.9.1.1")), { status: 403, reason: "ip_deny", headers: [] });
  assertEquals(denied(await check("192.0.2.1"))?.reason, "ip_allow");
  assertEquals(denied(await check("2001:db9::1"))?.reason, "ip_allow");
  assertEquals(
    denied(await check("not an address"))?.reason,
    "ip_allow",
    "an unparsable peer is in no allowed block",
  );
  const d = await check("10.9.1.1");
  assert(!d.allow && d.rule === "ip_deny 10.9.0.0/16", "the matching rule is named for the log");
  assertEquals(
    (await checkRequest(compilePolicy({}), { remoteAddr: "192.0.2.1", headers: [] }, 0)).allow,
    true,
  );
});

Deno.test("policy: rate limit allows the burst, then 429 with Retry-After; other addresses are served; tokens refill", async () => {
  const p = compilePolicy({ rate_limit: { per_second: 2, burst: 5 } });
  const from = (remoteAddr: string, now: number) => checkRequest(p, { remoteAddr, headers: [] }, now);
  for (let i = 0; i < 5; i++) {
    assertEquals((await from("192.0.2.1", 0)).allow, true, `burst request ${i + 1}`);
  }
  assertEquals(denied(await from("192.0.2.1", 0)), {
    status: 429,
    reason: "rate_limit",
    headers: [["Retry-After", "1"]],
  });
  assertEquals((await from("192.0.2.2", 0)).allow, true, "another address has its own bucket");
  assertEquals((await from("::ffff:192.0.2.1", 100)).allow, false, "the mapped form is the same client");
  assertEquals((await from("192.0.2.1", 500)).allow, true, "one token after 500 ms at 2/s");
  assertEquals((await from("192.0.2.1", 500)).allow, false);
  // IPv6 clients are counted per /64: rotating the interface id does not give a new bucket.
  for (let i = 0; i < 5; i++) assertEquals((await from(`2001:db8:1:2::${i + 1}`, 0)).allow, true);
  assertEquals((await from("2001:db8:1:2::99", 0)).allow, false);
  assertEquals((await from("2001:db8:1:3::1", 0)).allow, true);
  const slow = compilePolicy({ rate_limit: { per_second: 0.2, burst: 1 } });
  await checkRequest(slow, { remoteAddr: "192.0.2.1", headers: [] }, 0);
  assertEquals(denied(await checkRequest(slow, { remoteAddr: "192.0.2.1", headers: [] }, 0))?.headers, [[
    "Retry-After",
    "5",
  ]]);
});

Deno.test("rate limiter: memory stays bounded; idle buckets are dropped once they would be full again", () => {
  const rl = createRateLimiter(10, 10, 100);
  for (let i = 0; i < 5000; i++) rl.take(`client-${i}`, i);
  assert(rl.size() <= 100, `held ${rl.size()} buckets`);
  const idle = createRateLimiter(10, 10, 10_000);
  for (let i = 0; i < 1000; i++) idle.take(`c${i}`, 0);
  assertEquals(idle.size(), 1000);
  // A full refill takes 1 s; after that every call sweeps a few stale buckets away.
  for (let i = 0; i < 300; i++) idle.take("active", 2000 + i);
  assert(idle.size() < 10, `idle buckets dropped, ${idle.size()} left`);
});

Deno.test("policy: basic auth 401 with WWW-Authenticate, 200 with the right password (cached), the header not forwarded", async () => {
  const hash = await bcrypt.hash("s3cret:with colon", 10);
  const p = compilePolicy({ basic_auth: [{ username: "ann", password_hash: hash }] }, { realm: "app.test" });
  const auth = (user: string, pass: string) =>
    ["Authorization", `Basic ${btoa(`${user}:${pass}`)}`] as [string, string];
  const none = await checkRequest(p, { remoteAddr: "192.0.2.1", headers: [] }, 0);
  assertEquals(denied(none), {
    status: 401,
    reason: "basic_auth",
    headers: [["WWW-Authenticate", 'Basic realm="app.test", charset="UTF-8"']],
  });
  assertEquals(
    denied(await checkRequest(p, { remoteAddr: "192.0.2.1", headers: [auth("ann", "wrong")] }, 0))?.status,
    401,
  );
  assertEquals(
    (await checkRequest(p, { remoteAddr: "192.0.2.1", headers: [auth("bob", "s3cret:with colon")] }, 0))
      .allow,
    false,
  );
  let t = performance.now();
  const ok = await checkRequest(p, {
    remoteAddr: "192.0.2.1",
    headers: [["Host", "app.test"], auth("ann", "s3cret:with colon")],
  }, 0);
  const first = performance.now() - t;
  assert(ok.allow);
  assertEquals(applyHeaderEdits([["Host", "app.test"], auth("ann", "x")], ok.requestHeaders), [[
    "Host",
    "app.test",
  ]]);
  t = performance.now();
  for (let i = 0; i < 100; i++) {
    assert(
      (await checkRequest(p, { remoteAddr: "192.0.2.1", headers: [auth("ann", "s3cret:with colon")] }, 1000))
        .allow,
    );
  }
  const cached = (performance.now() - t) / 100;
  console.log(`bcrypt verify ${first.toFixed(1)} ms; cached ${cached.toFixed(3)} ms per request`);
  assert(cached < first / 10, "a verified password is not hashed again on every request");
  const fresh = compilePolicy({ basic_auth: [{ username: "ann", password_hash: hash }] });
  t = performance.now();
  const together = await Promise.all(
    Array.from(
      { length: 20 },
      () => checkRequest(fresh, { remoteAddr: "192.0.2.1", headers: [auth("ann", "s3cret:with colon")] }, 0),
    ),
  );
  const concurrentMs = performance.now() - t;
  assert(together.every((d) => d.allow));
  assert(
    concurrentMs < first * 4,
    `20 requests at once share one bcrypt run (${concurrentMs.toFixed(0)} ms)`,
  );
  assertEquals(
    denied(await checkRequest(p, { remoteAddr: "192.0.2.1", headers: [["authorization", "Bearer x"]] }, 0))
      ?.status,
    401,
  );
});

Deno.test("policy: a flood of guessed passwords meets the rate limit before bcrypt", async () => {
  const p = compilePolicy({
    rate_limit: { per_second: 1, burst: 2 },
    basic_auth: [{ username: "ann", password_hash: await bcrypt.hash("pw", 10) }],
  });
  const reasons = [];
  for (let i = 0; i < 4; i++) {
    const d = await checkRequest(p, {
      remoteAddr: "192.0.2.1",
      headers: [["Authorization", `Basic ${btoa(`ann:g${i}`)}`]],
    }, 0);
    reasons.push(denied(d)?.reason);
  }
  assertEquals(reasons, ["basic_auth", "basic_auth", "rate_limit", "rate_limit"]);
});

Deno.test("policy: request and response header rules (add replaces, remove is case-insensitive)", async () => {
  const p = compilePolicy({
    request_headers: { add: { "X-Edge": "hopgate" }, remove: ["Cookie"] },
    response_headers: {
      add: { "Strict-Transport-Security": "max-age=60" },
      remove: ["server", "X-Powered-By"],
    },
  });
  const d = await checkRequest(p, { remoteAddr: "192.0.2.1", headers: [] }, 0);
  assert(d.allow);
  assertEquals(
    applyHeaderEdits(
      [["Host", "a"], ["cookie", "x=1"], ["x-edge", "spoofed"], ["Accept", "*/*"]],
      d.requestHeaders,
    ),
    [["Host", "a"], ["Accept", "*/*"], ["X-Edge", "hopgate"]],
  );
  assertEquals(
    applyResponseHeaders(p, [["Server", "nginx"], ["Content-Type", "text/html"], ["x-powered-by", "php"]]),
    [["Content-Type", "text/html"], ["Strict-Transport-Security", "max-age=60"]],
  );
});

Deno.test("policy: the client address is the peer's unless the peer is a trusted proxy", () => {
  const trusted = (a: string) => a === "10.0.0.1" || a === "10.0.0.2";
  const xff = (v: string): [string, string][] => [["X-Forwarded-For", v]];
  assertEquals(
    clientAddress("192.0.2.9", xff("198.51.100.1"), trusted),
    "192.0.2.9",
    "an untrusted peer's header is ignored",
  );
  assertEquals(clientAddress("192.0.2.9", xff("198.51.100.1")), "192.0.2.9");
  assertEquals(
    clientAddress("10.0.0.1", xff("203.0.113.5, 198.51.100.1"), trusted),
    "198.51.100.1",
    "the nearest hop wins",
  );
  assertEquals(
    clientAddress("10.0.0.1", xff("198.51.100.1, 10.0.0.2"), trusted),
    "198.51.100.1",
    "trusted hops are skipped",
  );
  assertEquals(
    clientAddress("10.0.0.1", [["x-forwarded-for", "2001:db8::1"], ["X-Forwarded-For", "10.0.0.2"]], trusted),
    "2001:db8::1",
  );
  assertEquals(
    clientAddress("10.0.0.1", xff("not-an-ip"), trusted),
    "10.0.0.1",
    "garbage falls back to the peer",
  );
  assertEquals(clientAddress("10.0.0.1", [], trusted), "10.0.0.1");
});

Deno.test("policy: denial pages say what to do without naming the rule", async () => {
  const p = compilePolicy({ ip_deny: ["192.0.2.0/24"], rate_limit: { per_second: 0.5, burst: 1 } });
  const d1 = await checkRequest(p, { remoteAddr: "192.0.2.1", headers: [] }, 0);
  assert(!d1.allow);
  assertEquals(denialText(d1), { code: "forbidden", message: "Access from your address is not allowed." });
  await checkRequest(p, { remoteAddr: "198.51.100.1", headers: [] }, 0);
  const d2 = await checkRequest(p, { remoteAddr: "198.51.100.1", headers: [] }, 0);
  assert(!d2.allow);
  assertEquals(denialText(d2).message, "Too many requests from your address; try again in 2 s.");
});
