/**
 * The embedded database's seed: the tar reader against archives GNU tar wrote, fuzzed with mutated
 * and truncated input (a clean error, never a hang or a write outside the target), and a first
 * start from the seed that gives a working database.
 */
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { seededRandom } from "../lib/testing/seeded_random.ts";
import { extractTarGz, parseTar } from "../db/tar.ts";
import { openDatabase } from "../db/open.ts";
import { createLogger } from "../lib/log/logger.ts";
import { makeScratchDir } from "./support/scratch.ts";

async function gnuTar(files: Record<string, string>, args: string[] = []): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir({ prefix: "hopgate-tar-" });
  try {
    for (const [path, text] of Object.entries(files)) {
      await Deno.mkdir(`${dir}/src/${path}`.replace(/\/[^/]*$/, ""), { recursive: true });
      await Deno.writeTextFile(`${dir}/src/${path}`, text);
    }
    const out = await new Deno.Command("tar", {
      args: ["--format=ustar", ...args, "-cf", `${dir}/a.tar`, "-C", `${dir}/src`, "."],
    }).output();
    assert(out.success, new TextDecoder().decode(out.stderr));
    return await Deno.readFile(`${dir}/a.tar`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const FILES = {
  "PG_VERSION": "17\n",
  "base/1/112": "x".repeat(1500),
  "global/pg_control": "",
  [`deep/${"d".repeat(90)}/${"f".repeat(90)}`]: "long name via the ustar prefix",
};

Deno.test("tar: reads what GNU tar wrote, files and directories", async () => {
  const entries = await parseTar(await gnuTar(FILES));
  const files = Object.fromEntries(
    entries.filter((e) => e.kind === "file").map((e) => [e.path, new TextDecoder().decode(e.data)]),
  );
  assertEquals(files, FILES);
  assert(entries.some((e) => e.kind === "dir" && e.path === "base/1"), "directories are listed");
});

Deno.test("tar: fuzzed input fails with a tar error, never a path outside the target", async () => {
  const archive = await gnuTar(FILES);
  const random = seededRandom(13);
  for (let i = 0; i < 400; i++) {
    const bytes = archive.slice(0, i % 5 === 0 ? Math.floor(random() * archive.length) : archive.length);
    for (let n = 0; n < 1 + Math.floor(random() * 8); n++) {
      bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
    }
    try {
      for (const e of await parseTar(bytes)) {
        assert(!e.path.startsWith("/") && !e.path.split("/").includes(".."), `unsafe path ${e.path}`);
      }
    } catch (e) {
      assert(String((e as Error).message).startsWith("tar: "), `unexpected error: ${(e as Error).message}`);
    }
  }
});

Deno.test("tar: an entry leaving the target directory is refused", async () => {
  const archive = await gnuTar({ "a/b": "x" }, ["--transform=s,^\\./a,../../evil,"]);
  await assertRejects(() => parseTar(archive));
});

Deno.test("tar: extraction in small chunks writes the same files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hopgate-tar-" });
  try {
    const archive = await gnuTar(FILES);
    const gz = new Uint8Array(
      await new Response(
        new Blob([archive as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("gzip")),
      ).arrayBuffer(),
    );
    // 97-byte chunks: headers and bodies straddle chunk boundaries.
    const chunks = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < gz.length; i += 97) c.enqueue(gz.slice(i, i + 97));
        c.close();
      },
    });
    await extractTarGz(chunks, `${dir}/out`);
    for (const [path, text] of Object.entries(FILES)) {
      assertEquals(await Deno.readTextFile(`${dir}/out/${path}`), text, path);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("embedded database: a first start unpacks the seed (no initdb) and is a working database", async () => {
  const dir = await makeScratchDir("hopgate-seed-");
  try {
    const lines: string[] = [];
    const logger = createLogger({ level: "debug", write: (l) => lines.push(l) });
    const started = performance.now();
    const database = await openDatabase({ dataDir: dir, logger });
    const ms = performance.now() - started;
    await database.db.execute(
      "insert into domains (domain, client_api_key) values ('a.test', repeat('a', 64))",
    );
    await database.close();
    const again = await openDatabase({ dataDir: dir });
    const rows = await again.db.execute("select domain from domains");
    await again.close();
    assertEquals((rows as unknown as { rows: unknown[] }).rows, [{ domain: "a.test" }]);
    // Without the seed a first start runs initdb (≈ 2.5 s, and ~450 MB of heap for good); the time is a
    // figure for the log (benchmarks measure speed, tests do not), the property is that no initdb ran.
    assert(!lines.some((l) => /running initdb/.test(l)), lines.join("\n"));
    console.log(`first open from the seed: ${Math.round(ms)} ms`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
