/**
 * Client keys at rest: a keyed lookup (HMAC-SHA-256 of the key) for uniqueness and the key itself
 * sealed with AES-256-GCM, both under the server secret, so a copy of the database alone gives no
 * key away. The domain is the AEAD's associated data: a sealed key moved to another row fails to open.
 */
import { Buffer } from "node:buffer";
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto";

const PREFIX = "v1.";
const IV_LENGTH = 12;
const TAG_LENGTH = 16;

export interface KeySealer {
  /** The lookup value of a key: 64 hex characters, equal for equal keys. */
  lookup(key: string): string;
  /** The key sealed for `domain`: `v1.` + base64 of iv | ciphertext | tag. */
  seal(domain: string, key: string): string;
  /** The key back; throws KeySealError when the secret or the row does not match. */
  open(domain: string, sealed: string): string;
}

export class KeySealError extends Error {
  readonly code = "KEY_SEAL_MISMATCH";
  constructor(domain: string) {
    super(
      `the client key of ${domain} does not open with this server secret (HOP_SECRET_KEY or data/secret.key ` +
        `differs from the one the keys were sealed with; every server on one database needs the same HOP_SECRET_KEY)`,
    );
    this.name = "KeySealError";
  }
}

function derive(secret: Uint8Array, label: string): Uint8Array {
  return new Uint8Array(createHmac("sha256", secret).update(label).digest());
}

/** A sealer over a 32-byte server secret; separate sub-keys for lookup and sealing. */
export function createKeySealer(secret: Uint8Array): KeySealer {
  if (secret.length !== 32) throw new Error(`the server secret must be 32 bytes (got ${secret.length})`);
  const macKey = derive(secret, "hopgate client key lookup v1");
  const encKey = derive(secret, "hopgate client key seal v1");
  return {
    lookup(key) {
      return createHmac("sha256", macKey).update(key).digest("hex");
    },
    seal(domain, key) {
      const iv = randomBytes(IV_LENGTH);
      const cipher = createCipheriv("aes-256-gcm", encKey, iv);
      cipher.setAAD(new TextEncoder().encode(domain));
      const body = Buffer.concat([cipher.update(key, "utf8"), cipher.final()]);
      return PREFIX + Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64");
    },
    open(domain, sealed) {
      if (!sealed.startsWith(PREFIX)) throw new KeySealError(domain);
      const raw = Buffer.from(sealed.slice(PREFIX.length), "base64");
      if (raw.length < IV_LENGTH + TAG_LENGTH) throw new KeySealError(domain);
      try {
        const decipher = createDecipheriv("aes-256-gcm", encKey, raw.subarray(0, IV_LENGTH));
        decipher.setAAD(new TextEncoder().encode(domain));
        decipher.setAuthTag(raw.subarray(raw.length - TAG_LENGTH));
        const body = Buffer.concat([
          decipher.update(raw.subarray(IV_LENGTH, raw.length - TAG_LENGTH)),
          decipher.final(),
        ]);
        return body.toString("utf8");
      } catch {
        throw new KeySealError(domain);
      }
    },
  };
}
