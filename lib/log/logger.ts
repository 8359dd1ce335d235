/**
 * JSON logging: one object per line on stdout, readable by Loki as is.
 * Child loggers carry component, request_id, domain and session.
 */
import pino from "pino";

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";
export type LogFormat = "json" | "pretty";

export type LogFields = Record<string, unknown>;

/** The logger interface every layer takes; a subset of pino's. */
export interface Logger {
  trace(fields: LogFields | string, msg?: string): void;
  debug(fields: LogFields | string, msg?: string): void;
  info(fields: LogFields | string, msg?: string): void;
  warn(fields: LogFields | string, msg?: string): void;
  error(fields: LogFields | string, msg?: string): void;
  child(fields: LogFields): Logger;
  readonly level: string;
}

/** Field names whose values are secrets: written as "[redacted]" wherever they appear. */
export const SECRET_FIELDS = [
  "api_key",
  "apiKey",
  "client_api_key",
  "clientApiKey",
  "admin_api_key",
  "adminApiKey",
  "authorization",
  "psk",
  "key",
  "password",
];

function redactPaths(): string[] {
  return SECRET_FIELDS.flatMap((f) => [f, `*.${f}`]);
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Where lines go; stdout by default. Tests pass a collector. */
  write?: (line: string) => void;
}

const encoder = new TextEncoder();

function prettyLine(line: string): string {
  try {
    const o = JSON.parse(line) as Record<string, unknown>;
    const { time, level, msg, component, ...rest } = o;
    const extras = Object.entries(rest)
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    const t = typeof time === "string" ? time.slice(11, 23) : "";
    return `${t} ${String(level).toUpperCase().padEnd(5)} ${component ? `[${component}] ` : ""}${msg ?? ""}${
      extras ? "  " + extras : ""
    }\n`;
  } catch {
    return line;
  }
}

/** Creates the root logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? "json";
  const write = options.write ??
    ((line: string) => {
      Deno.stdout.writeSync(encoder.encode(line));
    });
  const stream = {
    write(line: string) {
      write(format === "pretty" ? prettyLine(line) : line);
    },
  };
  return pino(
    {
      level: options.level ?? "info",
      base: undefined,
      messageKey: "msg",
      timestamp: () => `,"time":"${new Date().toISOString()}"`,
      formatters: { level: (label: string) => ({ level: label }) },
      redact: { paths: redactPaths(), censor: "[redacted]" },
    },
    stream,
  ) as unknown as Logger;
}

/** A logger that drops everything; for tests and libraries used without one. */
export const silentLogger: Logger = createLogger({ level: "silent", write: () => {} });

/**
 * Routes console.* through the logger, so libraries that report with console (hono's node adapter
 * prints aborted response bodies with console.error) keep the output one JSON object per line.
 */
export function captureConsole(logger: Logger): void {
  const log = logger.child({ component: "runtime" });
  const text = (args: unknown[]) =>
    args.map((
      a,
    ) => (a instanceof Error ? `${a.name}: ${a.message}` : typeof a === "string" ? a : Deno.inspect(a)))
      .join(" ");
  console.error = (...args: unknown[]) => log.warn({ source: "console" }, text(args));
  console.warn = (...args: unknown[]) => log.warn({ source: "console" }, text(args));
  console.info = (...args: unknown[]) => log.debug({ source: "console" }, text(args));
  console.log = (...args: unknown[]) => log.info({ source: "console" }, text(args));
}
