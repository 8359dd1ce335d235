/**
 * IP addresses and CIDR blocks, IPv4 and IPv6, as 16 bytes: an IPv4 address is kept as its
 * IPv4-mapped IPv6 form (::ffff:a.b.c.d, RFC 4291 §2.5.5.2), so "10.0.0.0/8" matches a peer that a
 * dual-stack socket reports as ::ffff:10.1.2.3.
 */

export interface Cidr {
  /** The network address, 16 bytes, host bits zero. */
  network: Uint8Array;
  /** Prefix length over the 128 bits (an IPv4 /n is 96 + n). */
  bits: number;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function parseV4(s: string): number[] | null {
  const m = V4.exec(s);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  // Leading zeros are refused: some parsers read them as octal, and a rule must mean one thing.
  if (parts.some((p, i) => p > 255 || (m[i + 1].length > 1 && m[i + 1][0] === "0"))) return null;
  return parts;
}

function parseV6(s: string): Uint8Array | null {
  const out = new Uint8Array(16);
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string): number[] | null => {
    if (part === "") return [];
    const words: number[] = [];
    const items = part.split(":");
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (i === items.length - 1 && item.includes(".")) {
        const v4 = parseV4(item);
        if (!v4) return null;
        words.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(item)) words.push(parseInt(item, 16));
      else return null;
    }
    return words;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return null;
  if (halves.length === 1 ? head.length !== 8 : head.length + tail.length > 7) return null;
  const words = [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
  words.forEach((w, i) => {
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 0xff;
  });
  return out;
}

/** Parses an IPv4 or IPv6 address (brackets and a %zone allowed) to 16 bytes; null if it is none. */
export function parseIp(input: string): Uint8Array | null {
  let s = input.trim();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  const v4 = parseV4(s);
  if (v4) return new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4]);
  return s.includes(":") ? parseV6(s) : null;
}

/** Parses "a.b.c.d/n", "v6/n" or a bare address (a /32 or /128); returns the reason when invalid. */
export function parseCidr(input: string): Cidr | string {
  const slash = input.indexOf("/");
  const addr = slash >= 0 ? input.slice(0, slash) : input;
  const ip = parseIp(addr);
  if (!ip) return `${JSON.stringify(addr)} is not an IPv4 or IPv6 address`;
  const isV4 = parseV4(addr.trim()) !== null;
  const max = isV4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const p = input.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) {
      return `prefix length must be 0 to ${max} (got ${JSON.stringify(p)})`;
    }
    bits = Number(p);
  }
  const total = isV4 ? 96 + bits : bits;
  const network = ip.slice();
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, total - i * 8));
    network[i] &= (0xff << (8 - keep)) & 0xff;
  }
  return { network, bits: total };
}

/** Whether the 16-byte address lies in the block. */
export function cidrContains(cidr: Cidr, ip: Uint8Array): boolean {
  const full = cidr.bits >> 3;
  for (let i = 0; i < full; i++) if (ip[i] !== cidr.network[i]) return false;
  const rest = cidr.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (ip[full] & mask) === cidr.network[full];
}
