/**
 * ACME mode end to end against Debian's Pebble (a real RFC 8555 server) with pebble-challtestsrv
 * answering every name with 127.0.0.1: HTTP-01 is answered by the server's plain HTTP listener, and
 * the certificates served by SNI are verified against Pebble's root.
 */
import { assert, assertEquals, assertMatch, assertNotEquals } from "./support/assert.ts";
import { type Pebble, startPebble } from "./support/pebble.ts";
import { restartablePort } from "./support/ports.ts";
import { ADMIN_KEY, SERVER_DOMAIN, startTestServer, type TestServer } from "./support/server.ts";
import { type ResolverProxy, startResolverProxy } from "./support/resolver_proxy.ts";
import type { LogLine } from "./support/process.ts";
import * as x509 from "@peculiar/x509";
import { sleep } from "./support/wait.ts";
import { makeScratchDir } from "./support/scratch.ts";

const portOf = (hostPort: unknown) => Number(String(hostPort).split(":").pop());

interface AcmeServer {
  server: TestServer;
  httpsPort: number;
  /** The admin API over HTTPS (verified against Pebble's root). */
  admin(path: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

interface Fixture {
  dir: string;
  pebble: Pebble;
  httpPort: number;
  root: string;
  rootFile: string;
  start(): Promise<AcmeServer>;
}

async function withPebble(fn: (f: Fixture) => Promise<void>): Promise<void> {
  const dir = await makeScratchDir("hopgate-acme-");
  const httpPort = restartablePort(); // every server start of the test (and Pebble's checks) uses it
  const pebble = await startPebble({ httpPort, dir });
  const opened: AcmeServer[] = [];
  try {
    const root = await pebble.rootPem();
    const rootFile = `${dir}/pebble-root.pem`;
    await Deno.writeTextFile(rootFile, root);
    const start = async (): Promise<AcmeServer> => {
      const server = await startTestServer({
        dataDir: `${dir}/data`,
        env: {
          HOP_SERVER_TLS_MODE: "acme",
          HOP_SERVER_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
          HOP_ACME_DIRECTORY_URL: pebble.directoryUrl,
          HOP_ACME_CA_FILE: pebble.caFile,
          HOP_ACME_EMAIL: "admin@hopgate.test",
        },
      });
      const httpsPort = portOf(server.ready.https);
      const proxy: ResolverProxy = startResolverProxy(() => httpsPort);
      const client = proxy.client({ caPem: root, http2: false });
      const s: AcmeServer = {
        server,
        httpsPort,
        admin(path, init = {}) {
          const headers = new Headers(init.headers);
          headers.set("authorization", `Bearer ${ADMIN_KEY}`);
          if (init.body) headers.set("content-type", "application/json");
          return fetch(`https://${SERVER_DOMAIN}:${httpsPort}/api/v1/admin${path}`, {
            ...init,
            headers,
            client,
          });
        },
        async close() {
          const i = opened.indexOf(s);
          if (i < 0) return;
          opened.splice(i, 1);
          proxy.close();
          await server.stop();
        },
      };
      opened.push(s);
      return s;
    };
    await fn({ dir, pebble, httpPort, root, rootFile, start });
  } catch (e) {
    for (const s of opened) console.error(s.server.proc.lines.map((l) => JSON.stringify(l)).join("\n"));
    console.error(pebble.log());
    throw e;
  } finally {
    for (const s of [...opened]) await s.close().catch(() => {});
    await pebble.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

const issued = (domain: string) => (l: LogLine) => l.msg === "certificate issued" && l.domain === domain;

interface Served {
  verified: boolean;
  serial: string;
  subject: string;
  issuer: string;
}

/** The leaf certificate served for `servername`, and whether openssl verifies it against `rootFile`. */
async function served(port: number, servername: string, rootFile: string): Promise<Served> {
  const out = await new Deno.Command("openssl", {
    args: [
      "s_client",
      "-connect",
      `127.0.0.1:${port}`,
      "-servername",
      servername,
      "-CAfile",
      rootFile,
      "-verify_hostname",
      servername,
      "-showcerts",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const pem = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)?.[0];
  if (!pem) throw new Error(`no certificate from ${servername}: ${new TextDecoder().decode(out.stderr)}`);
  const leaf = new x509.X509Certificate(pem);
  return {
    verified: /Verify return code: 0 \(ok\)/.test(text),
    serial: leaf.serialNumber.toLowerCase(),
    subject: leaf.subject,
    issuer: leaf.issuer,
  };
}

async function register(s: AcmeServer, domain: string): Promise<void> {
  const r = await s.admin("/domains", { method: "POST", body: JSON.stringify({ domain }) });
  const text = await r.text();
  assertEquals(r.status, 201, text);
}

async function certificateState(s: AcmeServer, domain: string): Promise<Record<string, unknown>> {
  const r = await s.admin(`/domains/${domain}`);
  assertEquals(r.status, 200);
  return (await r.json()).certificate;
}

/** A keep-alive HTTP/1.1 connection over TLS, verified against `root` for `servername`. */
async function keepAlive(port: number, servername: string, root: string) {
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  const conn = await Deno.startTls(tcp, { hostname: servername, caCerts: [root] });
  const reader = conn.readable.getReader();
  const writer = conn.writable.getWriter();
  let buf = new Uint8Array(0);
  const more = async () => {
    const { value, done } = await reader.read();
    if (done) throw new Error("connection closed");
    const next = new Uint8Array(buf.length + value.length);
    next.set(buf);
    next.set(value, buf.length);
    buf = next;
  };
  return {
    async get(path: string): Promise<{ status: number; body: string }> {
      await writer.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: ${servername}\r\n\r\n`));
      let end;
      while ((end = new TextDecoder().decode(buf).indexOf("\r\n\r\n")) < 0) await more();
      const head = new TextDecoder().decode(buf.slice(0, end));
      assert(!/^connection: close/im.test(head), head);
      const length = Number(head.match(/^content-length: *(\d+)/im)?.[1]);
      assert(Number.isFinite(length), `no content-length in ${head}`);
      while (buf.length < end + 4 + length) await more();
      const body = new TextDecoder().decode(buf.slice(end + 4, end + 4 + length));
      buf = buf.slice(end + 4 + length);
      return { status: Number(head.split(" ")[1]), body };
    },
    close() {
      reader.releaseLock();
      writer.releaseLock();
      conn.close();
    },
  };
}

Deno.test("acme: a registered domain is served a Pebble-issued certificate; its state is in the admin API", async () => {
  await withPebble(async ({ start, rootFile }) => {
    const s = await start();
    await s.server.proc.waitFor(issued(SERVER_DOMAIN), 30_000);
    const t0 = performance.now();
    await register(s, "app.test");
    const line = await s.server.proc.waitFor(issued("app.test"), 30_000);
    const order = await s.server.proc.waitFor((l) =>
      l.msg === "acme order completed" && l.domain === "app.test"
    );
    console.log(
      `app.test: served ${
        Math.round(performance.now() - t0)
      } ms after registration, order ${order.duration_ms} ms`,
    );

    const cert = await served(s.httpsPort, "app.test", rootFile);
    assert(cert.verified, "the served chain verifies against Pebble's root");
    assertEquals(cert.subject, "CN=app.test");
    assertMatch(cert.issuer, /Pebble/);
    assertEquals(cert.serial, line.serial);

    const state = await certificateState(s, "app.test");
    assertEquals(state.status, "issued");
    assertEquals(state.issued, true);
    assertEquals(state.serial, cert.serial);
    assertEquals(state.last_error, null);
    const notAfter = Date.parse(String(state.not_after));
    const nextRenewal = Date.parse(String(state.next_renewal));
    const notBefore = Date.parse(String(state.not_before));
    // Renewal once a third of the lifetime is left (plus a little jitter).
    const due = notAfter - (notAfter - notBefore) / 3;
    assert(nextRenewal >= due && nextRenewal < notAfter, `${state.next_renewal} vs ${state.not_after}`);
  });
});

Deno.test("acme: a forced renewal swaps the certificate while a keep-alive connection keeps working", async () => {
  await withPebble(async ({ start, root, rootFile }) => {
    const s = await start();
    await s.server.proc.waitFor(issued(SERVER_DOMAIN), 30_000);
    await register(s, "app.test");
    const first = await s.server.proc.waitFor(issued("app.test"), 30_000);
    const before = await served(s.httpsPort, "app.test", rootFile);
    assertEquals(before.serial, first.serial);

    const conn = await keepAlive(s.httpsPort, "app.test", root);
    try {
      const a = await conn.get("/");
      const r = await s.admin("/domains/app.test/renew-certificate", { method: "POST" });
      assertEquals(r.status, 202);
      await r.body?.cancel();
      const renewed = await s.server.proc.waitFor(
        (l) => issued("app.test")(l) && l.serial !== first.serial,
        30_000,
      );
      assertEquals(renewed.renewal, true);
      const after = await served(s.httpsPort, "app.test", rootFile);
      assert(after.verified);
      assertEquals(after.serial, renewed.serial);
      assertNotEquals(after.serial, before.serial);
      // The connection opened before the swap still serves requests.
      const b = await conn.get("/");
      assertEquals(b.status, a.status);
      assertEquals((await certificateState(s, "app.test")).serial, after.serial);
    } finally {
      conn.close();
    }
  });
});

Deno.test("acme: a restart serves the stored certificates without placing new orders", async () => {
  await withPebble(async ({ start, rootFile }) => {
    const a = await start();
    const own = await a.server.proc.waitFor(issued(SERVER_DOMAIN), 30_000);
    await register(a, "app.test");
    const app = await a.server.proc.waitFor(issued("app.test"), 30_000);
    assertEquals(a.server.proc.lines.filter((l) => l.msg === "acme order created").length, 2);
    await a.close();

    const b = await start();
    // Give the scheduler time to act on anything it found missing or due.
    await sleep(1500);
    const orders = b.server.proc.lines.filter((l) =>
      l.msg === "acme order created" || l.msg === "acme account ready"
    );
    assertEquals(orders, []);
    assertEquals((await served(b.httpsPort, "app.test", rootFile)).serial, app.serial);
    assertEquals((await served(b.httpsPort, SERVER_DOMAIN, rootFile)).serial, own.serial);
    const state = await certificateState(b, "app.test");
    assertEquals([state.status, state.serial], ["issued", app.serial]);
  });
});

Deno.test("acme: a domain Pebble refuses gets the server's certificate and an error; the others keep serving", async () => {
  await withPebble(async ({ start, pebble, rootFile }) => {
    // The validator dials 127.0.0.2, where nothing listens: HTTP-01 fails for bad.test only.
    await pebble.setA("bad.test", ["127.0.0.2"]);
    const s = await start();
    const own = await s.server.proc.waitFor(issued(SERVER_DOMAIN), 30_000);
    await register(s, "bad.test");
    await register(s, "good.test");
    const failed = await s.server.proc.waitFor(
      (l) => l.msg === "certificate order failed" && l.domain === "bad.test",
      30_000,
    );
    assert(Number(failed.retry_in_ms) > 0);
    await s.server.proc.waitFor(issued("good.test"), 30_000);

    const good = await served(s.httpsPort, "good.test", rootFile);
    assert(good.verified);
    assertEquals(good.subject, "CN=good.test");
    // Until its certificate arrives, bad.test is answered with the server's own.
    const bad = await served(s.httpsPort, "bad.test", rootFile);
    assertEquals(bad.serial, own.serial);
    assert(!bad.verified);

    const state = await certificateState(s, "bad.test");
    assertEquals([state.status, state.issued, state.failures], ["failed", false, 1]);
    assertMatch(String(state.last_error), /.+/);
    assert(Date.parse(String(state.next_renewal)) > Date.now(), "a retry is planned");

    // Deleting a domain removes its certificate: the name falls back to the server's certificate.
    assertEquals((await s.admin("/domains/good.test", { method: "DELETE" })).status, 204);
    assertEquals((await served(s.httpsPort, "good.test", rootFile)).serial, own.serial);
  });
});
