/** Start-up against a PostgreSQL that is not there: a clear error within 10 s, never a hang. */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { startProcess } from "./support/process.ts";
import { makeScratchDir } from "./support/scratch.ts";

const ENV = {
  HOP_SERVER_DOMAIN: "hop.test",
  HOP_ADMIN_API_KEY: "test-admin-key-0123456789abcdef",
  HOP_SECRET_KEY: "7c1e9a4f0b3d5e7f9a1c3e5f7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d",
  HOP_SERVER_HTTP_LISTEN: "127.0.0.1:0",
  HOP_SERVER_HTTPS_LISTEN: "127.0.0.1:0",
  HOP_SERVER_DTLS_LISTEN: "127.0.0.1:0",
  HOP_SERVER_METRICS_LISTEN: "off",
  HOP_SERVER_TLS_MODE: "off",
};

async function startUnreachable(dsn: string) {
  const dataDir = await makeScratchDir("hopgate-db-");
  const started = performance.now();
  const proc = startProcess("server.ts", [], { ...ENV, HOP_DATA_DIR: dataDir, HOP_DB_DSN: dsn });
  const status = await proc.status;
  const seconds = (performance.now() - started) / 1000;
  await Deno.remove(dataDir, { recursive: true });
  return { status, seconds, stderr: proc.stderr() };
}

Deno.test("database: a refused PostgreSQL port stops start-up at once with exit 1 and the DSN's fix", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const r = await startUnreachable(`postgres://hop:secret@127.0.0.1:${port}/hop`);
  assertEquals(r.status.code, 1);
  assertMatch(
    r.stderr,
    /cannot reach PostgreSQL at postgres:\/\/hop:\*\*\*\*@127\.0\.0\.1:\d+\/hop.*check HOP_DB_DSN/,
  );
  assert(!r.stderr.includes("secret"), "the password was printed");
});

Deno.test("database: a PostgreSQL that accepts but never answers fails within the 10 s bound", async () => {
  // A listener that takes the connection and says nothing, like a firewall that swallows packets.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of silent) held.push(c);
  })().catch(() => {});
  try {
    const r = await startUnreachable(`postgres://hop@127.0.0.1:${(silent.addr as Deno.NetAddr).port}/hop`);
    assertEquals(r.status.code, 1);
    assertMatch(r.stderr, /cannot reach PostgreSQL/);
    // 10 s for the database plus the process's own start.
    assert(r.seconds < 14, `took ${r.seconds.toFixed(1)} s`);
    assert(r.seconds > 9, `gave up after only ${r.seconds.toFixed(1)} s`);
  } finally {
    silent.close();
    for (const c of held) c.close();
    await accepting;
  }
});
