/**
 * `deno task compile:all`: both binaries for every platform users run HopGate on, into dist/, with a
 * SHA256SUMS file. Needs Deno's runtime download for each target (blocked on the project's build
 * network: there `deno task compile:list` shows what the binaries embed, and tests/copied_tree.test.ts
 * checks the entrypoints run away from the checkout).
 *
 *   deno run -A scripts/compile_all.ts [--target=TRIPLE …]
 */
const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
];

const root = new URL("../", import.meta.url).pathname;
const chosen = Deno.args.filter((a) => a.startsWith("--target=")).map((a) => a.slice(9));
const targets = chosen.length > 0 ? chosen : TARGETS;

/**
 * The same flags as `deno task compile`: the server embeds the database seed and runs Liftoff only;
 * the client compiles lazily without V8's code cache (~5 MB less idle RSS, issue 13).
 */
const BINARIES = [
  {
    name: "hopgate-server",
    entry: "server.ts",
    flags: ["--v8-flags=--liftoff-only", "--include", "db/pglite_seed.tar.gz"],
  },
  { name: "hopgate-client", entry: "client.ts", flags: ["--no-code-cache"] },
];

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

await Deno.mkdir(`${root}dist`, { recursive: true });
const sums: string[] = [];
let failed = 0;
for (const target of targets) {
  for (const b of BINARIES) {
    const file = `${b.name}-${target}${target.includes("windows") ? ".exe" : ""}`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["compile", "-A", ...b.flags, "--target", target, "--output", `dist/${file}`, b.entry],
      cwd: root,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!out.success) {
      console.error(`compile:all: ${file} failed (exit ${out.code})`);
      failed++;
      continue;
    }
    sums.push(`${await sha256(`${root}dist/${file}`)}  ${file}`);
  }
}
await Deno.writeTextFile(`${root}dist/SHA256SUMS`, sums.join("\n") + (sums.length ? "\n" : ""));
console.log(`compile:all: ${sums.length} binaries in dist/, ${failed} failed; checksums in dist/SHA256SUMS`);
if (failed > 0) Deno.exit(1);
