/**
 * Declarative option tables: each option has a flag, an environment variable, a default and an
 * example. `--help` is printed from them and sources are merged through them, so the three never drift.
 */
import { readDotenvFile } from "./dotenv.ts";

export interface OptionSpec {
  /** Key in the raw config object. */
  key: string;
  /** Long flag without dashes, e.g. "server-domain". */
  flag: string;
  env: string;
  description: string;
  default?: string;
  example: string;
  /** A boolean flag: `--debug` alone means true. */
  boolean?: boolean;
  /** May be given several times (flags only); values are joined with ",". */
  repeatable?: boolean;
  /** Never printed back (keys). */
  secret?: boolean;
}

/** HOP_LOG_LEVEL, shared by both entrypoints. */
export const logLevelOption: OptionSpec = {
  key: "logLevel",
  flag: "log-level",
  env: "HOP_LOG_LEVEL",
  description: "trace, debug, info, warn, error, fatal or silent.",
  default: "info",
  example: "info",
};

/** HOP_RECORD_CIPHER, shared by both entrypoints (lib/dtls/aead.ts). */
export const recordCipherOption: OptionSpec = {
  key: "recordCipher",
  flag: "record-cipher",
  env: "HOP_RECORD_CIPHER",
  description:
    "AES-GCM of the DTLS records: auto (the system's libcrypto through FFI, node:crypto when it cannot load), openssl or node.",
  default: "auto",
  example: "node",
};

export interface ConfigProblem {
  variable: string;
  message: string;
}

/** Thrown with every problem found at once; the entrypoint prints one line each and exits 2. */
export class ConfigError extends Error {
  readonly code = "CONFIG_INVALID";
  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map((p) => `${p.variable}: ${p.message}`).join("\n"));
    this.name = "ConfigError";
  }
}

export interface ParsedArgs {
  values: Record<string, string>;
  help: boolean;
  version: boolean;
  envFile?: string;
}

/** Parses `--flag value`, `--flag=value` and boolean `--flag` / `--no-flag`. */
export function parseArgs(args: string[], specs: OptionSpec[]): ParsedArgs {
  const byFlag = new Map(specs.map((s) => [s.flag, s]));
  const values: Record<string, string> = {};
  const problems: ConfigProblem[] = [];
  const out: ParsedArgs = { values, help: false, version: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "-h" || arg === "--help") {
      out.help = true;
      continue;
    }
    if (arg === "-V" || arg === "--version") {
      out.version = true;
      continue;
    }
    if (!arg.startsWith("--")) {
      problems.push({
        variable: arg,
        message: `unexpected argument; options look like --name=value (see --help)`,
      });
      continue;
    }
    const eq = arg.indexOf("=");
    let name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    let value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    if (name === "env-file") {
      out.envFile = value ?? args[++i];
      continue;
    }
    let spec = byFlag.get(name);
    if (!spec && name.startsWith("no-") && byFlag.get(name.slice(3))?.boolean) {
      spec = byFlag.get(name.slice(3));
      name = name.slice(3);
      value = "false";
    }
    if (!spec) {
      problems.push({ variable: `--${name}`, message: `unknown option (see --help for the list)` });
      continue;
    }
    if (value === undefined) {
      if (spec.boolean) value = "true";
      else if (i + 1 < args.length) value = args[++i];
      else {
        problems.push({ variable: `--${name}`, message: `needs a value, e.g. --${name}=${spec.example}` });
        continue;
      }
    }
    values[spec.key] = spec.repeatable && values[spec.key] !== undefined
      ? `${values[spec.key]},${value}`
      : value;
  }
  if (problems.length) throw new ConfigError(problems);
  return out;
}

export interface Sources {
  args: string[];
  env: Record<string, string | undefined>;
  /** The .env file to read; `--env-file` overrides it. Default `.env` in the working directory. */
  envFile?: string;
  /** A per-user file read after the .env file (lowest before defaults), e.g. ~/.config/hopgate/client.env. */
  userConfigFile?: string;
}

/** Merges flags > environment > .env > defaults into raw strings keyed by option key. */
export function collectRaw(specs: OptionSpec[], sources: Sources): {
  raw: Record<string, string | undefined>;
  origin: Record<string, string>;
  parsed: ParsedArgs;
} {
  const parsed = parseArgs(sources.args, specs);
  const file = parsed.envFile ?? sources.envFile ?? ".env";
  const dotenv = readDotenvFile(file);
  const user = sources.userConfigFile ? readDotenvFile(sources.userConfigFile) : {};
  const raw: Record<string, string | undefined> = {};
  const origin: Record<string, string> = {};
  for (const s of specs) {
    const fromFlag = parsed.values[s.key];
    const fromEnv = sources.env[s.env];
    const fromFile = dotenv[s.env];
    if (fromFlag !== undefined) [raw[s.key], origin[s.key]] = [fromFlag, `--${s.flag}`];
    else if (fromEnv !== undefined && fromEnv !== "") [raw[s.key], origin[s.key]] = [fromEnv, s.env];
    else if (fromFile !== undefined && fromFile !== "") {
      [raw[s.key], origin[s.key]] = [fromFile, `${s.env} (${file})`];
    } else if (user[s.env] !== undefined && user[s.env] !== "") {
      [raw[s.key], origin[s.key]] = [user[s.env], `${s.env} (${sources.userConfigFile})`];
    } else [raw[s.key], origin[s.key]] = [s.default, s.env];
  }
  return { raw, origin, parsed };
}

/** The --help text. */
export function helpText(title: string, usage: string, specs: OptionSpec[]): string {
  const lines = [title, "", `Usage: ${usage}`, "", "Options (flag, environment variable, default):"];
  for (const s of specs) {
    const flag = s.boolean ? `--${s.flag}` : `--${s.flag}=${s.example}`;
    lines.push(`  ${flag}`);
    lines.push(`      ${s.env}${s.default !== undefined ? `  (default: ${s.default})` : "  (required)"}`);
    lines.push(`      ${s.description}`);
  }
  lines.push("  --env-file=PATH", "      .env file to read (default: ./.env)");
  lines.push("  -h, --help      this text", "  -V, --version   the version");
  lines.push("", "Precedence: flags override environment variables, which override the .env file.");
  return lines.join("\n");
}

/** Formats a value for an error line, hiding secrets and truncating long ones. */
export function shown(spec: OptionSpec | undefined, value: string | undefined): string {
  if (value === undefined) return "nothing";
  if (spec?.secret) return `a value of ${value.length} characters`;
  return JSON.stringify(value.length > 80 ? value.slice(0, 77) + "..." : value);
}
