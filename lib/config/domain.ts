/**
 * Domain name rules shared by configuration and the admin API: a lower-cased FQDN of at least two
 * labels, IDN converted to punycode, no IP address, wildcard or port, at most 253 characters.
 */

export type DomainResult = { ok: true; domain: string } | { ok: false; reason: string };

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const FORBIDDEN = /[\s/\\:@*?#%[\]<>"'`|^{}!$&()+,;=~]/;

/** Normalizes a user-supplied domain (case, IDN, one trailing dot) or says why it is not one. */
export function normalizeDomain(input: unknown): DomainResult {
  if (typeof input !== "string") return { ok: false, reason: "must be a string" };
  let s = input.trim();
  if (s === "") return { ok: false, reason: "must not be empty" };
  if (s.length > 253 + 1) return { ok: false, reason: "must be at most 253 characters" };
  if (s.includes("*")) return { ok: false, reason: "wildcards are not allowed" };
  if (s.includes(":")) return { ok: false, reason: "must not contain a port, scheme or IPv6 address" };
  if (FORBIDDEN.test(s)) return { ok: false, reason: "contains a character not allowed in a host name" };
  if (s.endsWith(".")) s = s.slice(0, -1);
  let ascii: string;
  try {
    ascii = new URL(`http://${s}/`).hostname;
  } catch {
    return { ok: false, reason: "is not a valid host name" };
  }
  if (ascii.endsWith(".")) return { ok: false, reason: "must not end with an empty label" };
  if (ascii.length > 253) return { ok: false, reason: "must be at most 253 characters (after punycode)" };
  const labels = ascii.split(".");
  if (labels.length < 2) return { ok: false, reason: "must have at least two labels, like app.example.com" };
  if (labels.every((l) => /^[0-9]+$/.test(l)) || /^[0-9]+$/.test(labels[labels.length - 1])) {
    return { ok: false, reason: "must be a name, not an IP address" };
  }
  for (const label of labels) {
    if (label === "") return { ok: false, reason: "must not contain an empty label (..)" };
    if (label.length > 63) {
      return { ok: false, reason: `label "${label.slice(0, 20)}..." is longer than 63 characters` };
    }
    if (!LABEL.test(label)) {
      return { ok: false, reason: `label "${label}" may hold only a-z, 0-9 and inner hyphens` };
    }
  }
  return { ok: true, domain: ascii };
}
