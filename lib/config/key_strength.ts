/**
 * A rough strength estimate for operator-chosen secrets (the admin API key): the lower of what the
 * character classes allow and what the characters actually used carry (Shannon entropy of the
 * string), so repeats and tiny alphabets score low however long the key is.
 */

/** Keys published as examples (md5("password") was --help's example): refused whatever they score. */
const KNOWN_KEYS = new Set(["5f4dcc3b5aa765d61d8327deb882cf99"]);

export interface KeyStrength {
  /** Estimated bits: min(length × log2(alphabet), length × Shannon entropy per character). */
  bits: number;
  /** Why it is too weak, or null. */
  problem: string | null;
}

/** The bits a key's character classes allow: lower, upper, digits, the rest of printable ASCII. */
function poolBits(key: string): number {
  let pool = 0;
  if (/[a-z]/.test(key)) pool += 26;
  if (/[A-Z]/.test(key)) pool += 26;
  if (/[0-9]/.test(key)) pool += 10;
  if (/[^a-zA-Z0-9]/.test(key)) pool += 33;
  return pool > 1 ? key.length * Math.log2(pool) : 0;
}

function shannonBits(key: string): number {
  const counts = new Map<string, number>();
  for (const ch of key) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let perChar = 0;
  for (const n of counts.values()) {
    const p = n / key.length;
    perChar -= p * Math.log2(p);
  }
  return perChar * key.length;
}

/** Judges a key: at least 64 bits by both estimates (Shannon counted generously, ≥ 48) and not a published one. */
export function keyStrength(key: string, minBits = 64): KeyStrength {
  const pool = poolBits(key);
  const shannon = shannonBits(key);
  const bits = Math.round(Math.min(pool, shannon));
  if (KNOWN_KEYS.has(key.toLowerCase())) return { bits, problem: "is a published example key" };
  if (pool < minBits) {
    return { bits, problem: `is too short for its characters (about ${Math.round(pool)} bits)` };
  }
  // A random 16-hex-character key carries 64 bits but shows ≈ 53 by Shannon: 3/4 of the target is the bar.
  if (shannon < minBits * 0.75) {
    return { bits, problem: `repeats characters too much (about ${Math.round(shannon)} bits of entropy)` };
  }
  return { bits, problem: null };
}

/** A fresh random key of 32 bytes as 64 hex characters, for examples and error messages. */
export function randomHexKey(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
}
