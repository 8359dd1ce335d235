/**
 * Change notification and the domain lifecycle without processes: the payload codec (round trip,
 * fuzzed input never throws), the lifecycle's apply/resync against recording parts, and two change
 * feeds on one embedded PGlite (LISTEN/NOTIFY in-process) telling each other about changes.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { seededRandom } from "../lib/testing/seeded_random.ts";
import { type Change, CHANGE_KINDS, decodeChange, encodeChange, openChangeFeed } from "../db/notify.ts";
import { createDomainLifecycle } from "../lib/proxy/domain_lifecycle.ts";
import { openDatabase } from "../db/open.ts";
import { silentLogger } from "../lib/log/logger.ts";
import { eventually } from "./support/wait.ts";
import { makeScratchDir } from "./support/scratch.ts";

Deno.test("change payload: round trip; fuzzed or foreign payloads decode to null, never throw", () => {
  for (const kind of CHANGE_KINDS) {
    const change: Change = { kind, domain: "app.example.com", server: crypto.randomUUID() };
    assertEquals(decodeChange(encodeChange(change)), change);
  }
  const random = seededRandom(5);
  const valid = encodeChange({ kind: "key_rotated", domain: "a.test", server: "s" });
  const samples = [
    "",
    "null",
    "[]",
    "{}",
    '{"k":"nope","d":"a","s":"b"}',
    '{"k":"domain_added","d":5,"s":"b"}',
  ];
  for (let i = 0; i < 2000; i++) {
    const bytes = [...valid].map((ch) =>
      random() < 0.05 ? String.fromCharCode(Math.floor(random() * 128)) : ch
    );
    samples.push(bytes.join("").slice(0, Math.floor(random() * (valid.length + 5))));
  }
  samples.push(`{"k":"domain_added","d":"${"a".repeat(300)}","s":"x"}`, "x".repeat(100_000));
  for (const s of samples) {
    const c = decodeChange(s);
    if (c !== null) {
      assert(CHANGE_KINDS.includes(c.kind), `kind ${c.kind}`);
      assert(typeof c.domain === "string" && c.domain.length > 0 && c.domain.length <= 253);
    }
  }
});

function parts() {
  const calls: string[] = [];
  const domains = new Set<string>(["a.test", "b.test"]);
  const lifecycle = createDomainLifecycle({
    domains,
    closeSessions: (d, reason) => {
      calls.push(`close ${d} (${reason})`);
      return Promise.resolve(1);
    },
    closeCarriers: (d) => void calls.push(`carriers ${d}`),
    certificates: { forget: (d) => Promise.resolve(void calls.push(`forget ${d}`)) },
    acme: { added: (d) => Promise.resolve(void calls.push(`acme ${d}`)) },
    policyChanged: (d) => void calls.push(`policy ${d}`),
    logger: silentLogger,
  }, [{ domain: "a.test", updated_at: "t1" }, { domain: "b.test", updated_at: "t1" }]);
  return { calls, domains, lifecycle };
}

Deno.test("domain lifecycle: add orders once, remove forgets and closes, rotate closes; policies reloaded as domains come and go", async () => {
  const { calls, domains, lifecycle } = parts();
  await lifecycle.apply("domain_added", "c.test", "t1");
  await lifecycle.apply("domain_added", "c.test", "t1"); // a second notice orders nothing more
  assert(domains.has("c.test"));
  await lifecycle.apply("key_rotated", "a.test", "t2");
  await lifecycle.apply("domain_removed", "b.test");
  await lifecycle.apply("certificate_renewed", "a.test");
  await lifecycle.apply("policy_changed", "a.test");
  assert(!domains.has("b.test"));
  assertEquals(calls, [
    "acme c.test",
    "policy c.test",
    "close a.test (the client key was rotated)",
    "carriers a.test",
    "forget b.test",
    "policy b.test",
    "close b.test (the domain was removed on the server)",
    "carriers b.test",
    "acme a.test",
    "policy a.test",
  ]);
});

Deno.test("domain lifecycle: resync adds, removes, and closes a domain whose key changed meanwhile", async () => {
  const { calls, domains, lifecycle } = parts();
  const result = await lifecycle.resync([
    { domain: "a.test", updated_at: "t2" }, // rotated while we were not listening
    { domain: "c.test", updated_at: "t1" }, // registered meanwhile
  ]); // b.test removed meanwhile
  assertEquals(result, { added: 1, removed: 1, rotated: 1 });
  assertEquals([...domains].sort(), ["a.test", "c.test"]);
  assert(calls.includes("close a.test (the client key was rotated)"));
  assert(calls.includes("forget b.test"));
  assert(calls.includes("acme c.test"));
  calls.length = 0;
  assertEquals(
    await lifecycle.resync([{ domain: "a.test", updated_at: "t2" }, { domain: "c.test", updated_at: "t1" }]),
    {
      added: 0,
      removed: 0,
      rotated: 0,
    },
  );
  assertEquals(calls, []);
});

Deno.test("change feed on embedded PGlite: a change published by one server reaches the other, not itself", async () => {
  const dir = await makeScratchDir("hopgate-notify-");
  const database = await openDatabase({ dataDir: dir });
  try {
    const seen: Record<string, Change[]> = { one: [], two: [] };
    const feeds = ["one", "two"].map((id) =>
      openChangeFeed({
        source: database.changes,
        db: database.db,
        serverId: id,
        logger: silentLogger,
        onChange: (c) => void seen[id].push(c),
      })
    );
    await eventually(() => feeds.every((f) => f.listening()), "both feeds to listen", 5000, 20);
    await feeds[0].publish("domain_added", "app.test");
    await feeds[1].publish("key_rotated", "app.test");
    await eventually(
      () => seen.one.length > 0 && seen.two.length > 0,
      "each server to see the other's change",
      2000,
      20,
    );
    assertEquals(seen.two, [{ kind: "domain_added", domain: "app.test", server: "one" }]);
    assertEquals(seen.one, [{ kind: "key_rotated", domain: "app.test", server: "two" }]);
    for (const f of feeds) await f.close();
  } finally {
    await database.close();
    await Deno.remove(dir, { recursive: true });
  }
});
