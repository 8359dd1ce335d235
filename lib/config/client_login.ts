/**
 * `hopgate-client login`: validates the server address, domain and key once and writes them to the
 * per-user config file (0600), so that afterwards `hopgate-client http 3000` is the whole command.
 */
import { parseDotenv } from "./dotenv.ts";
import { ConfigError, type ConfigProblem } from "./options.ts";
import { userConfigPath } from "./client_config.ts";
import { apiKey, dialAddress, domainName } from "./values.ts";

export interface LoginSources {
  args: string[];
  env: Record<string, string | undefined>;
  /** Reads the key when no --api-key-file is given (or it is "-"): standard input. */
  readStdin(): Promise<string>;
}

export const loginUsage =
  "hopgate-client login --server-addr=HOST:PORT --domain=DOMAIN [--api-key-file=PATH | < key-file]";

/** Parses the login arguments, validates them and writes the config file; returns its path. */
export async function runLogin(sources: LoginSources): Promise<string> {
  const values: Record<string, string> = {};
  const problems: ConfigProblem[] = [];
  const known = new Set(["server-addr", "domain", "api-key-file"]);
  for (let i = 0; i < sources.args.length; i++) {
    const arg = sources.args[i];
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m || !known.has(m[1])) {
      problems.push({ variable: arg, message: `unexpected argument; usage: ${loginUsage}` });
      continue;
    }
    const value = m[2] ?? sources.args[++i];
    if (value === undefined) problems.push({ variable: `--${m[1]}`, message: "needs a value" });
    else values[m[1]] = value;
  }
  if (problems.length) throw new ConfigError(problems);
  const keyFile = values["api-key-file"];
  let keyText: string;
  try {
    keyText = keyFile === undefined || keyFile === "-"
      ? await sources.readStdin()
      : await Deno.readTextFile(keyFile);
  } catch (e) {
    const fromStdin = keyFile === undefined || keyFile === "-";
    throw new ConfigError([{
      variable: fromStdin ? "the key on stdin" : "--api-key-file",
      message: `cannot be read${fromStdin ? "" : ` from ${JSON.stringify(keyFile)}`}: ${
        (e as Error).message
      }`,
    }]);
  }
  const checks: [
    string,
    string,
    typeof dialAddress | typeof domainName | typeof apiKey,
    string | undefined,
  ][] = [
    ["--server-addr", "HOP_CLIENT_SERVER_ADDR", dialAddress, values["server-addr"]],
    ["--domain", "HOP_CLIENT_DOMAIN", domainName, values.domain],
    [
      keyFile && keyFile !== "-" ? "--api-key-file" : "the key on stdin",
      "HOP_CLIENT_API_KEY",
      apiKey,
      keyText,
    ],
  ];
  const lines: Record<string, string> = {};
  for (const [variable, env, schema, value] of checks) {
    if (value === undefined) {
      problems.push({ variable, message: `is required; usage: ${loginUsage}` });
      continue;
    }
    const r = schema.safeParse(value.trim());
    if (!r.success) problems.push({ variable, message: r.error.issues[0]?.message ?? "is invalid" });
    else lines[env] = value.trim();
  }
  if (problems.length) throw new ConfigError(problems);
  const path = userConfigPath(sources.env);
  if (!path) {
    throw new ConfigError([{ variable: "HOME", message: "is unset; set HOME or XDG_CONFIG_HOME" }]);
  }
  await writeUserConfig(path, lines);
  return path;
}

/** Merges `lines` into the file (other variables a user added stay), mode 0600, directory 0700. */
async function writeUserConfig(path: string, lines: Record<string, string>): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf("/"));
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  let existing: Record<string, string> = {};
  try {
    existing = parseDotenv(await Deno.readTextFile(path), path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const merged = { ...existing, ...lines };
  const text = "# Written by hopgate-client login; holds a secret key (mode 0600).\n" +
    Object.entries(merged).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("\n") + "\n";
  // Written under a temporary name with 0600 from the start, so the key is never readable by others.
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(tmp, text, { mode: 0o600 });
  await Deno.chmod(tmp, 0o600);
  await Deno.rename(tmp, path);
}
