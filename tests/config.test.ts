/** Configuration: precedence, one clear error per problem, and the entrypoints' exit code 2. */
import { assert, assertEquals, assertMatch, assertThrows } from "./support/assert.ts";
import { loadServerConfig, serverOptions } from "../lib/config/server_config.ts";
import { allServices, clientOptions, loadClientConfig } from "../lib/config/client_config.ts";
import { ConfigError } from "../lib/config/options.ts";
import { parseDotenv } from "../lib/config/dotenv.ts";
import { runToEnd } from "./support/process.ts";

const KEY = "ab".repeat(32);
const SERVER_ENV = { HOP_SERVER_DOMAIN: "hop.example.com", HOP_ADMIN_API_KEY: "0123456789abcdef0123" };
const CLIENT_ENV = {
  HOP_CLIENT_SERVER_ADDR: "hop.example.com:443",
  HOP_CLIENT_DOMAIN: "app.example.com",
  HOP_CLIENT_API_KEY: KEY,
  HOP_CLIENT_LOCAL_TARGET: "127.0.0.1:3000",
};
const NO_FILE = "/nonexistent/.env";

function problems(fn: () => unknown): string[] {
  const e = assertThrows(fn, (e) => e instanceof ConfigError) as ConfigError;
  return e.problems.map((p) => `${p.variable} ${p.message}`);
}

Deno.test("server config: defaults apply when only the required variables are set", () => {
  const { config } = loadServerConfig({ args: [], env: SERVER_ENV, envFile: NO_FILE });
  assertEquals(config.domain, "hop.example.com");
  assertEquals(config.httpListen, { hostname: "0.0.0.0", port: 80 });
  assertEquals(config.httpsListen, { hostname: "0.0.0.0", port: 443 });
  assertEquals(config.dtlsListen, { hostname: "0.0.0.0", port: 443 });
  assertEquals(config.dataDir, "./data");
  assertEquals(config.logFormat, "json");
  assertEquals(config.proxyTimeoutMs, 60_000);
  assertEquals(config.dbDsn, undefined);
});

for (const variable of ["HOP_SERVER_DOMAIN", "HOP_ADMIN_API_KEY"]) {
  Deno.test(`server config: a missing ${variable} is its own clear error`, () => {
    const env: Record<string, string> = { ...SERVER_ENV };
    delete env[variable];
    const lines = problems(() => loadServerConfig({ args: [], env, envFile: NO_FILE }));
    assertEquals(lines.length, 1);
    assertMatch(lines[0], new RegExp(`^${variable} is required; set it like ${variable}=\\S+`));
  });
}

for (
  const variable of [
    "HOP_CLIENT_SERVER_ADDR",
    "HOP_CLIENT_DOMAIN",
    "HOP_CLIENT_API_KEY",
    "HOP_CLIENT_LOCAL_TARGET",
  ]
) {
  Deno.test(`client config: a missing ${variable} is its own clear error`, () => {
    const env: Record<string, string> = { ...CLIENT_ENV };
    delete env[variable];
    const lines = problems(() => loadClientConfig({ args: [], env, envFile: NO_FILE }));
    assertEquals(lines.length, 1);
    assertMatch(lines[0], new RegExp(`^${variable} is required`));
  });
}

Deno.test("server config: every invalid value is reported at once, naming variable, value and an example", () => {
  const lines = problems(() =>
    loadServerConfig({
      args: [],
      env: {
        HOP_SERVER_DOMAIN: "not a domain",
        HOP_ADMIN_API_KEY: "short",
        HOP_SERVER_HTTP_LISTEN: "eighty",
        HOP_SERVER_HTTPS_LISTEN: ":99999",
        HOP_DB_DSN: "mysql://x",
        HOP_LOG_LEVEL: "loud",
        HOP_SERVER_PROXY_TIMEOUT: "soon",
        HOP_SERVER_TLS_MODE: "maybe",
        HOP_RECORD_CIPHER: "fast",
      },
      envFile: NO_FILE,
    })
  );
  assertEquals(lines.length, 9, lines.join("\n"));
  assertMatch(byVarOf(lines, "HOP_RECORD_CIPHER"), /must be auto, openssl or node.*got "fast"/);
  const byVar = (v: string) => lines.find((l) => l.startsWith(v + " "));
  assertMatch(byVar("HOP_SERVER_HTTP_LISTEN")!, /host:port.*got "eighty".*e\.g\. 0\.0\.0\.0:80/);
  assertMatch(byVar("HOP_SERVER_DOMAIN")!, /got "not a domain"/);
  assertMatch(byVar("HOP_DB_DSN")!, /postgres:\/\//);
  // Secrets are described, never echoed.
  assertMatch(byVar("HOP_ADMIN_API_KEY")!, /a value of 5 characters/);
  assert(!byVar("HOP_ADMIN_API_KEY")!.includes('"short"'));
});

function byVarOf(lines: string[], v: string): string {
  return lines.find((l) => l.startsWith(v + " ")) ?? `(no line for ${v})`;
}

Deno.test("client config: a short API key says how long it must be", () => {
  const lines = problems(() =>
    loadClientConfig({
      args: [],
      env: { ...CLIENT_ENV, HOP_CLIENT_API_KEY: "abcdef123456" },
      envFile: NO_FILE,
    })
  );
  assertMatch(lines[0], /^HOP_CLIENT_API_KEY must be 64 hex characters \(got 12\)/);
});

Deno.test("config: flags override environment, which overrides the .env file", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/.env`;
  await Deno.writeTextFile(
    file,
    `# a comment\nexport HOP_SERVER_DOMAIN=file.example.com\nHOP_ADMIN_API_KEY="from-the-file-0123456789"\nHOP_SERVER_HTTP_LISTEN=127.0.0.1:8001 # trailing\nHOP_LOG_LEVEL='warn'\n`,
  );
  try {
    const fileOnly = loadServerConfig({ args: [], env: {}, envFile: file }).config;
    assertEquals(fileOnly.domain, "file.example.com");
    assertEquals(fileOnly.adminApiKey, "from-the-file-0123456789");
    assertEquals(fileOnly.httpListen, { hostname: "127.0.0.1", port: 8001 });
    assertEquals(fileOnly.logLevel, "warn");
    const envWins =
      loadServerConfig({ args: [], env: { HOP_SERVER_DOMAIN: "env.example.com" }, envFile: file }).config;
    assertEquals(envWins.domain, "env.example.com");
    assertEquals(envWins.httpListen.port, 8001);
    const flagWins = loadServerConfig({
      args: ["--server-domain", "flag.example.com", "--http-listen=:9000"],
      env: { HOP_SERVER_DOMAIN: "env.example.com", HOP_SERVER_HTTP_LISTEN: ":8500" },
      envFile: file,
    }).config;
    assertEquals(flagWins.domain, "flag.example.com");
    assertEquals(flagWins.httpListen, { hostname: "0.0.0.0", port: 9000 });
    const explicitFile = loadServerConfig({ args: [`--env-file=${file}`], env: {}, envFile: NO_FILE }).config;
    assertEquals(explicitFile.domain, "file.example.com");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config: an unknown flag is an error that points to --help", () => {
  const lines = problems(() =>
    loadServerConfig({ args: ["--sever-domain=x"], env: SERVER_ENV, envFile: NO_FILE })
  );
  assertMatch(lines[0], /^--sever-domain unknown option \(see --help/);
});

Deno.test("client config: --service is repeatable and the longest prefix comes first", () => {
  const { config } = loadClientConfig({
    args: ["--service", "/api=127.0.0.1:8080", "--service=/api/v2=http://127.0.0.1:8081"],
    env: CLIENT_ENV,
    envFile: NO_FILE,
  });
  assertEquals(allServices(config).map((s) => [s.prefix, s.target.href]), [
    ["/api/v2", "http://127.0.0.1:8081/"],
    ["/api", "http://127.0.0.1:8080/"],
    ["/", "http://127.0.0.1:3000/"],
  ]);
  const bad = problems(() =>
    loadClientConfig({ args: ["--service", "api=x"], env: CLIENT_ENV, envFile: NO_FILE })
  );
  assertMatch(bad[0], /^--service .*PREFIX=TARGET/);
});

Deno.test("dotenv: quotes, escapes and errors with line numbers", () => {
  assertEquals(parseDotenv(`A=1\nB="x\\ny"\nC='raw\\n'\nD= spaced value  # note\n`), {
    A: "1",
    B: "x\ny",
    C: "raw\\n",
    D: "spaced value",
  });
  const e = assertThrows(() => parseDotenv("A=1\nnot a line\n", "my.env")) as Error;
  assertMatch(e.message, /^my\.env:2: expected KEY=VALUE/);
});

Deno.test("config: every option has a variable, a flag and an example", () => {
  for (const o of [...serverOptions, ...clientOptions]) {
    assertMatch(o.env, /^HOP_[A-Z_]+$/);
    assertMatch(o.flag, /^[a-z][a-z-]+$/);
    assert(o.example.length > 0);
  }
});

Deno.test("entrypoints: bad configuration exits 2 with one line per problem; --help and --version exit 0", async () => {
  const server = await runToEnd("server.ts", [], { HOP_SERVER_HTTP_LISTEN: "nope" });
  assertEquals(server.code, 2);
  const lines = server.stderr.trim().split("\n");
  assert(lines.some((l) => /HOP_SERVER_DOMAIN is required/.test(l)), server.stderr);
  assert(lines.some((l) => /HOP_ADMIN_API_KEY is required/.test(l)), server.stderr);
  assert(lines.some((l) => /HOP_SERVER_HTTP_LISTEN must be host:port/.test(l)), server.stderr);
  const client = await runToEnd("client.ts", [], { HOP_CLIENT_API_KEY: "abcde" });
  assertEquals(client.code, 2);
  assertMatch(client.stderr, /HOP_CLIENT_API_KEY must be 64 hex characters \(got 5\)/);
  for (const entry of ["server.ts", "client.ts"]) {
    const help = await runToEnd(entry, ["--help"], {});
    assertEquals(help.code, 0);
    assertMatch(help.stdout, /HOP_LOG_LEVEL/);
    const version = await runToEnd(entry, ["--version"], {});
    assertEquals(version.code, 0);
    assertMatch(version.stdout, /^hopgate-(server|client) \d+\.\d+\.\d+$/m);
  }
});
