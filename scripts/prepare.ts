/**
 * Installs the npm dependencies into node_modules when they are missing or package.json changed
 * (deno.json uses "nodeModulesDir": "manual": node-dtls-client's optional native dependency breaks "auto").
 */
const root = new URL("../", import.meta.url);
const pkg = await Deno.readFile(new URL("package.json", root));
const hash = Array.from(
  new Uint8Array(await crypto.subtle.digest("SHA-256", pkg)),
  (b) => b.toString(16).padStart(2, "0"),
)
  .join("");
const marker = new URL("node_modules/.hopgate-installed", root);
const current = await Deno.readTextFile(marker).catch(() => "");
if (current.trim() !== hash) {
  console.error("hopgate: installing npm dependencies (npm install)...");
  const out = await new Deno.Command("npm", {
    args: ["install", "--no-audit", "--no-fund", "--loglevel=error"],
    cwd: root.pathname,
    stdout: "inherit",
    stderr: "inherit",
  }).output().catch((e) => {
    console.error(
      `hopgate: npm is needed to install dependencies (${(e as Error).message}); install Node.js and npm`,
    );
    Deno.exit(1);
  });
  if (!out.success) {
    console.error("hopgate: npm install failed; see above");
    Deno.exit(1);
  }
  await Deno.writeTextFile(marker, hash);
}
