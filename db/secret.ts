/**
 * The server secret that seals client keys at rest: HOP_SECRET_KEY (64 hex characters, the same on
 * every server sharing one PostgreSQL) or, with the embedded database, a 0600 file generated once
 * in the data directory.
 */

export const SECRET_FILE = "secret.key";
const HEX64 = /^[0-9a-fA-F]{64}$/;

export class SecretError extends Error {
  readonly code = "SECRET_INVALID";
  constructor(message: string) {
    super(message);
    this.name = "SecretError";
  }
}

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** 32 random bytes as 64 hex characters. */
export function randomSecretHex(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
}

export interface SecretSource {
  /** HOP_SECRET_KEY, when set. */
  secretKeyHex?: string;
  /** Where the generated secret lives when HOP_SECRET_KEY is unset. */
  dataDir: string;
  /** Set when PostgreSQL is the database: the secret must then come from HOP_SECRET_KEY. */
  dsn?: string;
}

/** The 32-byte server secret; generates data/secret.key (0600) on the first start of an embedded server. */
export async function loadServerSecret(source: SecretSource): Promise<Uint8Array> {
  if (source.secretKeyHex !== undefined) {
    if (!HEX64.test(source.secretKeyHex)) {
      throw new SecretError("HOP_SECRET_KEY must be 64 hex characters (make one with: openssl rand -hex 32)");
    }
    return fromHex(source.secretKeyHex);
  }
  if (source.dsn) {
    throw new SecretError(
      "HOP_SECRET_KEY is required with HOP_DB_DSN: every server on the database must seal client keys with " +
        "the same secret (make one with: openssl rand -hex 32, and give it to each server)",
    );
  }
  const path = `${source.dataDir.replace(/\/+$/, "")}/${SECRET_FILE}`;
  try {
    const text = (await Deno.readTextFile(path)).trim();
    if (!HEX64.test(text)) {
      throw new SecretError(
        `${path} must hold 64 hex characters (it is the server secret; restore it from a backup)`,
      );
    }
    await Deno.chmod(path, 0o600).catch(() => {});
    return fromHex(text);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await Deno.mkdir(source.dataDir, { recursive: true, mode: 0o700 });
  const hex = randomSecretHex();
  // createNew: two servers racing on a fresh directory never overwrite each other's secret.
  await Deno.writeTextFile(path, `${hex}\n`, { createNew: true, mode: 0o600 });
  await Deno.chmod(path, 0o600).catch(() => {});
  return fromHex(hex);
}
