/**
 * The ACME store over a real embedded database with a stub CA: servers sharing the database place one
 * order per host and pick up each other's certificates; the account key is made once; a removed
 * domain loses its certificate.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { openDatabase } from "../db/open.ts";
import { createCertificateTable } from "../db/certificates.ts";
import { createChallengeTable, loadOrCreateAcmeAccount } from "../db/acme_account.ts";
import { createHttp01Challenges } from "../lib/tls/http01.ts";
import { ManualClock } from "./support/manual_clock.ts";
import { silentLogger } from "../lib/log/logger.ts";
import { type AcmeIssuer, certificateFacts } from "../lib/tls/acme_issuer.ts";
import { openAcmeStore } from "../lib/tls/acme_store.ts";
import { issueHostCertificate, loadOrCreateCa } from "../lib/tls/self_signed.ts";
import { eventually } from "./support/wait.ts";
import { makeScratchDir } from "./support/scratch.ts";

async function withDatabase(
  fn: (db: Awaited<ReturnType<typeof openDatabase>>, dir: string) => Promise<void>,
) {
  const dir = await makeScratchDir("hopgate-acme-store-");
  const database = await openDatabase({ dataDir: dir });
  try {
    await fn(database, dir);
  } finally {
    await database.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** A CA stand-in: issues from a local CA and counts orders per host. */
async function stubIssuer(dir: string) {
  const ca = await loadOrCreateCa(`${dir}/stub-ca`);
  const orders: string[] = [];
  const issuer: AcmeIssuer = {
    async issue(hostname) {
      orders.push(hostname);
      const pair = await issueHostCertificate(ca, hostname);
      return { certPem: pair.cert, keyPem: pair.key, ...certificateFacts(pair.cert) };
    },
  };
  return { issuer, orders };
}

Deno.test("acme store: an order lease is held by one server until released or expired", async () => {
  await withDatabase(async ({ db }) => {
    const table = createCertificateTable(db);
    assert(await table.tryLease("app.test", "server-a", 60_000));
    assert(!(await table.tryLease("app.test", "server-b", 60_000)));
    assert(await table.tryLease("app.test", "server-a", 60_000), "the holder may extend it");
    await table.releaseLease("app.test", "server-a");
    assert(await table.tryLease("app.test", "server-b", -1), "free once released");
    assert(await table.tryLease("app.test", "server-a", 60_000), "free once expired");
  });
});

Deno.test("acme store: the account key is created once per directory", async () => {
  await withDatabase(async ({ db }) => {
    let made = 0;
    const createKey = () => Promise.resolve(`key-${++made}`);
    const a = await loadOrCreateAcmeAccount(db, "https://ca.example/dir", createKey);
    const b = await loadOrCreateAcmeAccount(db, "https://ca.example/dir", createKey);
    const other = await loadOrCreateAcmeAccount(db, "https://other.example/dir", createKey);
    assertEquals([a.keyPem, b.keyPem, other.keyPem, made], ["key-1", "key-1", "key-2", 2]);
  });
});

Deno.test("acme store: an HTTP-01 challenge placed by one server is answered by another on the same database", async () => {
  await withDatabase(async ({ db }) => {
    const a = createHttp01Challenges(createChallengeTable(db));
    const b = createHttp01Challenges(createChallengeTable(db));
    const token = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
    await a.set(token, `${token}.thumbprint`);
    assertEquals(await b.respond(`/.well-known/acme-challenge/${token}`), `${token}.thumbprint`);
    assertEquals(await b.respond("/.well-known/acme-challenge/../../etc/passwd"), undefined);
    assertEquals(await b.respond(`/other/${token}`), undefined);
    await a.delete(token);
    assertEquals(await b.respond(`/.well-known/acme-challenge/${token}`), undefined);
  });
});

Deno.test("acme store: two servers on one database order each host once and serve the same certificate", async () => {
  await withDatabase(async ({ db }, dir) => {
    const { issuer, orders } = await stubIssuer(dir);
    const clock = new ManualClock();
    const open = (name: string) =>
      openAcmeStore({
        db,
        serverDomain: "hop.test",
        isServedHost: (h) => h === "app.test",
        directoryUrl: "https://ca.example/dir",
        dir: `${dir}/${name}`,
        logger: silentLogger,
        clock,
        issuer,
      });
    const a = await open("a");
    const b = await open("b");
    a.start(["app.test"]);
    b.start(["app.test"]);
    // Simulated time moves on (order starts are spaced, a busy lease is looked at again after 30 s,
    // each server reads the other's certificates every 10 min) until both servers hold both
    // certificates: a second per poll, or straight to the next timer when none is due sooner.
    const issued = (h: string) => a.state(h)?.issued && b.state(h)?.issued;
    await eventually(() => {
      clock.advance(Math.max(1000, (clock.nextTimerAt() ?? 0) - clock.now()));
      return Boolean(issued("hop.test") && issued("app.test"));
    }, "both certificates on both servers");
    assertEquals(orders.sort(), ["app.test", "hop.test"]);
    assertEquals(a.state("app.test")?.serial, b.state("app.test")?.serial);
    assertEquals(a.state("app.test")?.status, "issued");
    assertEquals(orders.length, 2);
    a.close();
    b.close();
  });
});

Deno.test("acme store: a pending host gets the server's certificate; a removed one loses its own", async () => {
  await withDatabase(async ({ db }, dir) => {
    const { issuer } = await stubIssuer(dir);
    const served = new Set(["app.test"]);
    const clock = new ManualClock();
    const store = await openAcmeStore({
      db,
      serverDomain: "hop.test",
      isServedHost: (h) => served.has(h),
      directoryUrl: "https://ca.example/dir",
      dir: `${dir}/tls`,
      logger: silentLogger,
      clock,
      issuer,
    });
    const placeholder = await store.contextFor("hop.test");
    assert(await store.contextFor("app.test") === placeholder, "nothing issued yet");
    store.start(served);
    await eventually(() => Boolean(store.state("hop.test")?.issued), "hop.test issued");
    const own = await store.contextFor("hop.test");
    assert(own !== placeholder);
    assert(await store.contextFor("app.test") === own, "app.test waits for its own");
    await eventually(() => {
      clock.advance(1000);
      return Boolean(store.state("app.test")?.issued);
    }, "app.test issued");
    assert(await store.contextFor("app.test") !== own);
    assert(await store.contextFor("unknown.test") === own);

    served.delete("app.test");
    await store.forget("app.test");
    assert(await store.contextFor("app.test") === own);
    assertEquals(store.state("app.test"), null);
    assertEquals(await createCertificateTable(db).get("app.test"), null);
    store.close();
  });
});
