/**
 * A local user's attacks on the data directory of a real server process: reading files (modes),
 * copying the database (keys sealed at rest, PGlite and PostgreSQL), and a second server on the
 * same embedded database.
 */
import { PGlite } from "@electric-sql/pglite";
import postgres from "postgres";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { SECRET_KEY, startTestServer, type TestServer } from "./support/server.ts";
import { runToEnd, startProcess } from "./support/process.ts";
import { wireHandshake } from "./support/dtls_wire.ts";
import { pskFromApiKey } from "../lib/dtls/psk.ts";
import { migrations } from "../db/migrations.ts";
import { extractTarGz } from "../db/tar.ts";
import { startPostgres } from "../scripts/postgres.ts";
import { makeScratchDir, scratchRoot } from "./support/scratch.ts";

const DOMAIN = "app.example.com";

async function register(server: TestServer, domain = DOMAIN): Promise<string> {
  const res = await server.admin("/domains", { method: "POST", body: JSON.stringify({ domain }) });
  assertEquals(res.status, 201);
  return (await res.json()).client_api_key as string;
}

async function handshake(server: TestServer, key: string, domain = DOMAIN): Promise<string> {
  const [hostname, port] = String(server.ready.dtls).split(":");
  return await wireHandshake({ hostname, port: Number(port) }, {
    bind: "127.0.0.1",
    identity: domain,
    psk: pskFromApiKey(key),
  });
}

async function* walk(path: string): AsyncGenerator<{ path: string; info: Deno.FileInfo }> {
  const info = await Deno.lstat(path);
  yield { path, info };
  if (!info.isDirectory) return;
  for await (const e of Deno.readDir(path)) yield* walk(`${path}/${e.name}`);
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/** The files under `dir` whose bytes contain the key, as hex text or as raw PSK bytes. */
async function filesHolding(dir: string, key: string): Promise<string[]> {
  const found: string[] = [];
  const forms = [
    new TextEncoder().encode(key),
    new TextEncoder().encode(key.toUpperCase()),
    pskFromApiKey(key),
  ];
  for await (const { path, info } of walk(dir)) {
    if (!info.isFile) continue;
    const bytes = await Deno.readFile(path);
    if (forms.some((f) => contains(bytes, f))) found.push(path);
  }
  return found;
}

async function rawRows(dir: string): Promise<Record<string, unknown>[]> {
  const db = await PGlite.create(`${dir}/pglite`);
  try {
    return (await db.query<Record<string, unknown>>("select * from domains")).rows;
  } finally {
    await db.close();
  }
}

Deno.test("every file under the data directory is owner-only whatever the umask, and no key is stored in plain text", async () => {
  const dataDir = await makeScratchDir("hopgate-sec-data-");
  try {
    await Deno.chmod(dataDir, 0o777);
    await Deno.writeTextFile(`${dataDir}/left-over.txt`, "from an older version");
    await Deno.chmod(`${dataDir}/left-over.txt`, 0o666);
    // The server inherits umask 0 (PGlite would create 0666 files); only for the spawn, which happens
    // before startTestServer's first await, so parallel test modules keep theirs.
    const previous = Deno.umask(0);
    const starting = startTestServer({ dataDir, embedded: true });
    Deno.umask(previous);
    const server = await starting;
    let key;
    try {
      key = await register(server);
      assertEquals(await handshake(server, key), "established", "the PSK lookup opens the sealed key");
    } finally {
      await server.stop();
    }
    let files = 0;
    for await (const { path, info } of walk(dataDir)) {
      if (info.isSymlink) continue;
      const mode = (info.mode ?? 0) & 0o777;
      assertEquals(mode.toString(8), info.isDirectory ? "700" : "600", path);
      if (info.isFile) files++;
    }
    assert(files > 100, `only ${files} files: is the embedded database there?`);
    const secret = (await Deno.readTextFile(`${dataDir}/secret.key`)).trim();
    assertMatch(secret, /^[0-9a-f]{64}$/);
    assertEquals(await filesHolding(dataDir, key), [], "files holding the client key");
    const [row] = await rawRows(dataDir);
    assertEquals(row.client_api_key, null);
    assertMatch(String(row.client_key_hash), /^[0-9a-f]{64}$/);
    assert(!JSON.stringify(row).includes(key), "a column holds the key");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("plain-text keys written by an older version are sealed at start-up and keep working", async () => {
  const dataDir = await makeScratchDir("hopgate-sec-legacy-");
  const legacyKey = Array.from(
    crypto.getRandomValues(new Uint8Array(32)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
  try {
    // Unpacked from the seed the server itself starts from (PGlite's own initdb takes seconds).
    await extractTarGz(
      (await Deno.open(new URL("../db/pglite_seed.tar.gz", import.meta.url))).readable,
      `${dataDir}/pglite`,
    );
    const db = await PGlite.create(`${dataDir}/pglite`);
    await db.exec(
      "create table hopgate_migrations (tag text primary key, applied_at timestamptz not null default now())",
    );
    for (const m of migrations.filter((m) => m.tag < "0003")) {
      for (const s of m.statements) await db.exec(s);
      await db.query("insert into hopgate_migrations (tag) values ($1)", [m.tag]);
    }
    await db.query("insert into domains (domain, client_api_key) values ($1, $2)", [DOMAIN, legacyKey]);
    await db.close();
    const server = await startTestServer({ dataDir, embedded: true });
    try {
      assert(server.proc.lines.some((l) => l.msg === "client keys sealed at rest" && l.sealed === 1));
      assertEquals(await handshake(server, legacyKey), "established");
    } finally {
      await server.stop();
    }
    const [row] = await rawRows(dataDir);
    assertEquals(row.client_api_key, null);
    assert(!JSON.stringify(row).includes(legacyKey));
    // The table files were rewritten without the old rows (the WAL may still hold them until recycled).
    const tableFiles = await filesHolding(`${dataDir}/pglite/base`, legacyKey);
    assertEquals(tableFiles, []);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("on PostgreSQL no key is in a table, the secret is required, and a wrong secret refuses to start", async () => {
  const pg = await startPostgres({ parent: scratchRoot() });
  const dataDir = await makeScratchDir("hopgate-sec-pg-");
  try {
    const server = await startTestServer({ dataDir, dsn: pg.dsn });
    let key;
    try {
      key = await register(server);
      assertEquals(await handshake(server, key), "established");
    } finally {
      await server.stop();
    }
    const sql = postgres(pg.dsn, { onnotice: () => {} });
    try {
      const rows = await sql`select * from domains`;
      assertEquals(rows.length, 1);
      assertEquals(rows[0].client_api_key, null);
      assert(!JSON.stringify(rows).includes(key), "a column holds the key");
      const dump = await sql`select string_agg(t::text, '') as all from domains t`;
      assert(!String(dump[0].all).includes(key));
    } finally {
      await sql.end();
    }
    const env = {
      HOP_SERVER_DOMAIN: "hop.test",
      HOP_ADMIN_API_KEY: "test-admin-key-0123456789abcdef",
      HOP_DATA_DIR: dataDir,
      HOP_DB_DSN: pg.dsn,
      HOP_SERVER_TLS_MODE: "off",
      HOP_SERVER_HTTP_LISTEN: "127.0.0.1:0",
      HOP_SERVER_DTLS_LISTEN: "127.0.0.1:0",
      HOP_SERVER_METRICS_LISTEN: "off",
    };
    const missing = await runToEnd("server.ts", [], env);
    assertEquals(missing.code, 2);
    assertMatch(missing.stderr, /HOP_SECRET_KEY is required with HOP_DB_DSN.*openssl rand -hex 32/);
    const wrong = await runToEnd("server.ts", [], { ...env, HOP_SECRET_KEY: SECRET_KEY.replace(/^7/, "8") });
    assertEquals(wrong.code, 1);
    assertMatch(wrong.stderr, /does not open with this server secret.*HOP_SECRET_KEY/);
  } finally {
    await pg.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a second server on one data directory exits non-zero naming it and the first server's pid; a killed server's lock does not block a restart", async () => {
  const dataDir = await makeScratchDir("hopgate-sec-lock-");
  try {
    const first = await startTestServer({ dataDir, embedded: true });
    try {
      const second = startProcess("server.ts", [], {
        HOP_SERVER_DOMAIN: "hop.test",
        HOP_ADMIN_API_KEY: "test-admin-key-0123456789abcdef",
        HOP_DATA_DIR: dataDir,
        HOP_SERVER_TLS_MODE: "off",
        HOP_SERVER_HTTP_LISTEN: "127.0.0.1:0",
        HOP_SERVER_DTLS_LISTEN: "127.0.0.1:0",
        HOP_SERVER_METRICS_LISTEN: "off",
      });
      const status = await second.status;
      assertEquals(status.code, 1);
      assert(second.stderr().includes(`HOP_DATA_DIR ${dataDir} is in use`), second.stderr());
      assert(second.stderr().includes(`pid ${first.proc.child.pid}`), second.stderr());
      // The first server is untouched: its data still answers.
      await register(first);
    } finally {
      await first.proc.stop("SIGKILL");
    }
    const again = await startTestServer({ dataDir, embedded: true });
    try {
      const res = await again.admin(`/domains/${DOMAIN}`);
      assertEquals(res.status, 200);
    } finally {
      await again.stop();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
