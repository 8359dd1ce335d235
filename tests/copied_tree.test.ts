/**
 * Compile-readiness: the entrypoints run from a copy of the sources in a temporary directory while the
 * working directory is somewhere else, so a path that only resolves from the checkout (migrations, the
 * database seed, pages, the inspector's page) fails here before it fails in a `deno compile` binary.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { ADMIN_KEY } from "./support/server.ts";
import { sleep } from "./support/wait.ts";
import { makeScratchDir } from "./support/scratch.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function copyTree(): Promise<string> {
  const files = new TextDecoder().decode(
    (await new Deno.Command("git", { args: ["ls-files", "-z"], cwd: ROOT }).output()).stdout,
  ).split("\0").filter(Boolean);
  const dir = await makeScratchDir("hopgate-copy-");
  for (const f of files) {
    const to = `${dir}/${f}`;
    await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(`${ROOT}${f}`, to);
  }
  await Deno.symlink(`${ROOT}node_modules`, `${dir}/node_modules`);
  return dir;
}

Deno.test("server.ts and client.ts run from a copy of the sources with the working directory elsewhere", async () => {
  const copy = await copyTree();
  const elsewhere = await Deno.makeTempDir({ prefix: "hopgate-cwd-" });
  const data = await makeScratchDir("hopgate-copy-data-");
  try {
    const help = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", `${copy}/deno.json`, `${copy}/client.ts`, "--help"],
      cwd: elsewhere,
    }).output();
    assertEquals(help.code, 0, new TextDecoder().decode(help.stderr));
    const server = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", `${copy}/deno.json`, `${copy}/server.ts`],
      cwd: elsewhere,
      env: {
        HOP_SERVER_DOMAIN: "hop.test",
        HOP_ADMIN_API_KEY: ADMIN_KEY,
        HOP_SERVER_HTTP_LISTEN: "127.0.0.1:0",
        HOP_SERVER_HTTPS_LISTEN: "127.0.0.1:0",
        HOP_SERVER_DTLS_LISTEN: "127.0.0.1:0",
        HOP_SERVER_METRICS_LISTEN: "off",
        HOP_SERVER_TLS_MODE: "self-signed",
        HOP_DATA_DIR: data,
      },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let out = "";
    const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const deadline = Date.now() + 30_000;
    while (!out.includes('"server ready"') && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    // The signal handlers are installed just after the ready line: let that happen before SIGTERM.
    await sleep(300);
    server.kill("SIGTERM");
    reader.releaseLock();
    await server.stdout.cancel().catch(() => {});
    const status = await server.status;
    const err = new TextDecoder().decode(await new Response(server.stderr).arrayBuffer());
    assert(out.includes('"server ready"'), `no ready line from the copied tree:\n${out}\n${err}`);
    assert(!out.includes("running initdb"), "the database seed was found from the copy");
    assertEquals(status.code, 0, err);
    assertEquals([...Deno.readDirSync(elsewhere)].length, 0, "nothing was written to the working directory");
  } finally {
    for (const d of [copy, elsewhere, data]) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
});
