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

const SECRETS = new Set(SECRET_FIELDS);
const CENSOR = "[redacted]";

/**
 * `fields` with every secret field censored, at the top level and one level down (what pino's redact
 * paths `key` and `*.key` covered); `fields` itself when it holds none. pino's own redaction parsed every
 * path again for every key of every line: with an access-log line per request, it was 12 % of the
 * server's and the client's CPU.
 */
export function redactSecrets(fields: LogFields): LogFields {
  let out: LogFields | undefined;
  for (const k in fields) {
    if (SECRETS.has(k)) {
      (out ??= { ...fields })[k] = CENSOR;
      continue;
    }
    const v = fields[k];
    if (v === null || typeof v !== "object" || Array.isArray(v)) continue;
    let inner: LogFields | undefined;
    for (const k2 in v as LogFields) if (SECRETS.has(k2)) (inner ??= { ...(v as LogFields) })[k2] = CENSOR;
    if (inner) (out ??= { ...fields })[k] = inner;
  }
  return out ?? fields;
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

/** Above this many pending characters, lines are written at once. */
const FLUSH_CHARS = 64 * 1024;

/**
 * Lines to stdout, one write per task: the lines a task logs leave together once its microtasks are done
 * (an access-log line per request was a system call each, ~7 % of the server's and the client's CPU under
 * load). Nothing waits for a later task: a line is out before any timer or I/O runs again, and what is
 * pending is written on exit, on an uncaught error and on an unhandled rejection.
 */
function stdoutLines(): (line: string) => void {
  let pending = "";
  let queued = false;
  const flush = () => {
    queued = false;
    if (pending === "") return;
    const bytes = encoder.encode(pending);
    pending = "";
    for (let at = 0; at < bytes.byteLength;) at += Deno.stdout.writeSync(bytes.subarray(at));
  };
  for (const event of ["unload", "error", "unhandledrejection"]) globalThis.addEventListener(event, flush);
  return (line) => {
    pending += line;
    if (pending.length >= FLUSH_CHARS) flush();
    else if (!queued) {
      queued = true;
      queueMicrotask(flush);
    }
  };
}

/** Creates the root logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? "json";
  const write = options.write ?? stdoutLines();
  const stream = {
    write(line: string) {
      write(format === "pretty" ? prettyLine(line) : line);
    },
  };
  const root = pino(
    {
      level: options.level ?? "info",
      base: undefined,
      messageKey: "msg",
      timestamp: () => `,"time":"${new Date().toISOString()}"`,
      formatters: {
        level: (label: string) => ({ level: label }),
        log: redactSecrets,
      },
    },
    stream,
  );
  // Children share the root's formatters but pino applies the bindings formatter to the root's only: child
  // bindings are censored here (every child inherits this method from its parent).
  const child = root.child;
  root.child = function (this: typeof root, bindings, options) {
    return child.call(this, redactSecrets(bindings), options);
  } as typeof root.child;
  return root as unknown as Logger;
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
