/**
 * Bulk bodies end to end through a real tunnel (server.ts and client.ts as processes, a local origin):
 * 100 MB each way with curl over HTTP/1.1 and HTTP/2, compared by SHA-256.
 */
import { assertEquals } from "./support/assert.ts";
import { curl, withTunnel } from "./support/tunnel_env.ts";
import { seededHash, seededStream, startOrigin } from "./support/tunnel_origin.ts";

const DOMAIN = "app.test";

Deno.test("tunnel: 100 MB upload and download compared by SHA-256, over HTTP/1.1 and HTTP/2", async (t) => {
  const SIZE = 100 * 1024 * 1024;
  const origin = startOrigin("bulk");
  try {
    await withTunnel({ domain: DOMAIN, target: origin.target }, async ({ srv }) => {
      for (const [flag, version] of [["--http1.1", "1.1"], ["--http2", "2"]]) {
        await t.step(`upload over HTTP/${version}`, async () => {
          const seed = version === "2" ? 22 : 11;
          const expected = await seededHash(SIZE, seed);
          const r = await curl(
            srv,
            DOMAIN,
            "/upload",
            [flag, "-T", "-", "-H", "content-type: application/octet-stream", "--max-time", "120"],
            seededStream(SIZE, seed),
          );
          assertEquals([r.status, r.httpVersion, r.code], [200, version, 0]);
          assertEquals(JSON.parse(r.text), { sha256: expected, bytes: SIZE });
          console.log(
            `upload 100 MB over HTTP/${version}: ${(r.timeMs / 1000).toFixed(2)} s, ${
              (SIZE / 1048576 / (r.timeMs / 1000)).toFixed(1)
            } MB/s`,
          );
        });
        await t.step(`download over HTTP/${version}`, async () => {
          const seed = version === "2" ? 44 : 33;
          const expected = await seededHash(SIZE, seed);
          const r = await curl(
            srv,
            DOMAIN,
            `/download?size=${SIZE}&seed=${seed}`,
            [flag, "--max-time", "120"],
            undefined,
            true,
          );
          assertEquals([r.status, r.httpVersion, r.code], [200, version, 0]);
          assertEquals(r.hashed, { sha256: expected, bytes: SIZE });
          console.log(
            `download 100 MB over HTTP/${version}: ${(r.timeMs / 1000).toFixed(2)} s, ${
              (SIZE / 1048576 / (r.timeMs / 1000)).toFixed(1)
            } MB/s`,
          );
        });
      }
    });
  } finally {
    await origin.close();
  }
});
