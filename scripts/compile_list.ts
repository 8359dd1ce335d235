/**
 * What `deno task compile` would embed in each binary: the local modules and npm packages that
 * `deno info` finds in the entrypoint's module graph (compile itself needs a runtime download
 * this network blocks).
 */
const root = new URL("../", import.meta.url);
for (const entry of ["server.ts", "client.ts"]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: root.pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    console.error(new TextDecoder().decode(out.stderr));
    Deno.exit(1);
  }
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string; size?: number }[];
    npmPackages?: Record<string, unknown>;
  };
  const local = info.modules.filter((m) => m.specifier.startsWith(root.href));
  const bytes = local.reduce((n, m) => n + (m.size ?? 0), 0);
  const npm = Object.keys(info.npmPackages ?? {}).sort();
  console.log(
    `hopgate-${
      entry.replace(".ts", "")
    }: ${local.length} local modules (${bytes} bytes), ${npm.length} npm packages`,
  );
  for (const m of local) console.log(`  ${m.specifier.slice(root.href.length)}`);
  console.log(`  npm: ${npm.join(", ")}`);
}
