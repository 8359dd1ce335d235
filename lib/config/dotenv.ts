/**
 * A `.env` reader: KEY=VALUE lines, `#` comments, optional `export `, single or double quotes
 * (double quotes understand \n, \t, \" and \\). Later lines win, as with most loaders.
 */

export class DotenvError extends Error {
  readonly code = "CONFIG_DOTENV";
  constructor(readonly file: string, readonly line: number, detail: string) {
    super(`${file}:${line}: ${detail}`);
    this.name = "DotenvError";
  }
}

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses the text of a .env file. */
export function parseDotenv(text: string, file = ".env"): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i].trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("export ")) line = line.slice(7).trimStart();
    const eq = line.indexOf("=");
    if (eq <= 0) throw new DotenvError(file, i + 1, `expected KEY=VALUE, got ${JSON.stringify(line)}`);
    const key = line.slice(0, eq).trim();
    if (!KEY.test(key)) throw new DotenvError(file, i + 1, `invalid variable name ${JSON.stringify(key)}`);
    out[key] = parseValue(line.slice(eq + 1).trim(), file, i + 1);
  }
  return out;
}

function parseValue(raw: string, file: string, line: number): string {
  const quote = raw[0];
  if (quote === '"' || quote === "'") {
    const end = findClosingQuote(raw, quote);
    if (end < 0) throw new DotenvError(file, line, `unterminated ${quote} quote`);
    const body = raw.slice(1, end);
    return quote === "'" ? body : body.replace(/\\([nrt"\\])/g, (_, c: string) => unescape(c));
  }
  const hash = raw.search(/\s#/);
  return (hash >= 0 ? raw.slice(0, hash) : raw).trim();
}

function findClosingQuote(raw: string, quote: string): number {
  for (let i = 1; i < raw.length; i++) {
    if (raw[i] === "\\" && quote === '"') {
      i++;
      continue;
    }
    if (raw[i] === quote) return i;
  }
  return -1;
}

function unescape(c: string): string {
  return ({ n: "\n", r: "\r", t: "\t", '"': '"', "\\": "\\" } as Record<string, string>)[c];
}

/** Reads a .env file if it exists; a missing file is an empty set, not an error. */
export function readDotenvFile(path: string): Record<string, string> {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return {};
    throw e;
  }
  return parseDotenv(text, path);
}
