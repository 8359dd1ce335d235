/**
 * Writes db/pglite_seed.tar.gz: a freshly initialised PGlite data directory (no tables; the
 * migrations run as usual). A first start unpacks it instead of running initdb inside the server,
 * which costs ~2.5 s and leaves the WebAssembly heap grown by ~450 MB for the process's life.
 * Run it again after upgrading @electric-sql/pglite:
 *   deno run -A scripts/pglite_seed.ts
 */
import { PGlite } from "@electric-sql/pglite";

const out = new URL("../db/pglite_seed.tar.gz", import.meta.url);
const dir = await Deno.makeTempDir({ prefix: "hopgate-seed-" });
try {
  const client = await PGlite.create(`${dir}/pglite`);
  // A clean shutdown state: no WAL to replay on the first open.
  await client.query("checkpoint");
  const dump = await client.dumpDataDir("gzip");
  await client.close();
  await Deno.writeFile(out, new Uint8Array(await dump.arrayBuffer()));
  console.log(`${out.pathname}: ${(await Deno.stat(out)).size} bytes`);
} finally {
  await Deno.remove(dir, { recursive: true });
}
