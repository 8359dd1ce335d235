/**
 * A minimal ustar reader for the embedded database's seed (a PGlite data directory dump): regular
 * files and directories only, names up to prefix + name (255 bytes). Pure: bytes in, entries out.
 */

export interface TarEntry {
  /** Relative path, never absolute and never with `..` segments. */
  path: string;
  kind: "file" | "dir";
  data: Uint8Array;
}

const BLOCK = 512;

function field(block: Uint8Array, start: number, length: number): string {
  let end = start;
  while (end < start + length && block[end] !== 0) end++;
  return new TextDecoder().decode(block.subarray(start, end));
}

function octal(block: Uint8Array, start: number, length: number, what: string): number {
  const text = field(block, start, length).trim();
  if (!/^[0-7]*$/.test(text)) throw new Error(`tar: ${what} "${text}" is not octal`);
  return text === "" ? 0 : parseInt(text, 8);
}

function checksumOk(block: Uint8Array): boolean {
  const stored = octal(block, 148, 8, "checksum");
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  return sum === stored;
}

/** A safe relative path, or an error naming the offending entry. */
function safePath(raw: string): string {
  const parts = raw.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.some((p) => p === "..")) throw new Error(`tar: entry "${raw}" leaves the target directory`);
  return parts.join("/");
}

/** An incremental tar reader: feed it chunks, it calls `onEntry` per complete entry. */
export class TarReader {
  #buffered: Uint8Array[] = [];
  #length = 0;
  #done = false;

  constructor(private readonly onEntry: (entry: TarEntry) => void | Promise<void>) {}

  /** Consumes a chunk; resolves once the entries it completes were handled. */
  async push(chunk: Uint8Array): Promise<void> {
    if (this.#done) return;
    this.#buffered.push(chunk);
    this.#length += chunk.length;
    for (;;) {
      if (this.#length < BLOCK) return;
      const header = this.#peek(BLOCK);
      if (header.every((b) => b === 0)) {
        this.#done = true;
        return;
      }
      if (!checksumOk(header)) throw new Error("tar: bad header checksum");
      const name = field(header, 0, 100);
      const size = octal(header, 124, 12, "size");
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      if (this.#length < BLOCK + padded) return;
      const whole = this.#take(BLOCK + padded);
      const prefix = field(header, 345, 155);
      const type = String.fromCharCode(header[156] || 0x30);
      const path = safePath(prefix ? `${prefix}/${name}` : name);
      if (type === "0") {
        await this.onEntry({ path, kind: "file", data: whole.subarray(BLOCK, BLOCK + size) });
      } else if (type === "5") {
        if (path !== "") await this.onEntry({ path, kind: "dir", data: new Uint8Array(0) });
      } else {
        throw new Error(`tar: entry "${name}" has unsupported type "${type}" (only files and directories)`);
      }
    }
  }

  /** Throws when the archive ended inside an entry. */
  end(): void {
    if (!this.#done && this.#length > 0) throw new Error("tar: the archive is truncated");
  }

  #peek(n: number): Uint8Array {
    if (this.#buffered[0].length >= n) return this.#buffered[0].subarray(0, n);
    const joined = this.#take(this.#length);
    this.#buffered = [joined];
    this.#length = joined.length;
    return joined.subarray(0, n);
  }

  #take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const head = this.#buffered[0];
      const part = Math.min(head.length, n - filled);
      out.set(head.subarray(0, part), filled);
      filled += part;
      if (part === head.length) this.#buffered.shift();
      else this.#buffered[0] = head.subarray(part);
    }
    this.#length -= n;
    return out;
  }
}

/** Parses a whole uncompressed tar archive; throws on a malformed one. */
export async function parseTar(bytes: Uint8Array): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  const reader = new TarReader((e) => {
    entries.push(e);
  });
  await reader.push(bytes);
  reader.end();
  return entries;
}

/** Writes one entry under `dir`. */
export async function writeTarEntry(entry: TarEntry, dir: string): Promise<void> {
  const target = `${dir}/${entry.path}`;
  if (entry.kind === "dir") await Deno.mkdir(target, { recursive: true });
  else {
    await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(target, entry.data, { mode: 0o600 });
  }
}

/** Unpacks a gzip-compressed tar archive into `dir`, one entry in memory at a time. */
export async function extractTarGz(source: ReadableStream<Uint8Array>, dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const reader = new TarReader((e) => writeTarEntry(e, dir));
  const inflate = new DecompressionStream("gzip") as unknown as ReadableWritablePair<Uint8Array, Uint8Array>;
  for await (const chunk of source.pipeThrough(inflate)) await reader.push(chunk);
  reader.end();
}
