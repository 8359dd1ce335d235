/**
 * The server name a TLS ClientHello asks for (RFC 8446 §4.1.2, RFC 6066 §3), read from the first
 * bytes of a connection before TLS starts. The HTTPS front resolves that name's certificate first and
 * answers node:tls's SNICallback at once: under Deno 2.9, node:tls over a stream it did not open fails
 * the handshake when the SNICallback answers later (measured: a 20 ms answer never completes).
 */

/** What the first bytes say: a complete ClientHello (with its server name, if any), need more, or not TLS. */
export type HelloScan =
  | { kind: "hello"; serverName: string | undefined; length: number }
  | { kind: "more" }
  | { kind: "not_tls" };

/** Longest ClientHello record waited for (one TLS record). */
const MAX_RECORD = 16 * 1024 + 5;

/** Scans `bytes` (the connection's first bytes) for a ClientHello record. Pure; never throws. */
export function scanClientHello(bytes: Uint8Array): HelloScan {
  if (bytes.length < 5) return bytes.length > 0 && bytes[0] !== 22 ? { kind: "not_tls" } : { kind: "more" };
  if (bytes[0] !== 22 || bytes[1] !== 3) return { kind: "not_tls" };
  const length = 5 + ((bytes[3] << 8) | bytes[4]);
  if (length > MAX_RECORD) return { kind: "not_tls" };
  if (bytes.length < length) return { kind: "more" };
  return { kind: "hello", serverName: serverNameOf(bytes.subarray(5, length)), length };
}

/** The host_name in a ClientHello handshake message's server_name extension; undefined when absent or malformed. */
function serverNameOf(h: Uint8Array): string | undefined {
  let at = 0;
  const need = (n: number) => at + n <= h.length;
  const u8 = () => h[at++];
  const u16 = () => {
    const v = (h[at] << 8) | h[at + 1];
    at += 2;
    return v;
  };
  if (!need(4) || u8() !== 1) return undefined;
  at += 3; // handshake length
  if (!need(2 + 32 + 1)) return undefined;
  at += 2 + 32; // legacy_version, random
  at += 1 + h[at]; // session id
  if (!need(2)) return undefined;
  const suites = u16();
  at += suites;
  if (!need(1)) return undefined;
  at += 1 + h[at]; // compression methods
  if (!need(2)) return undefined;
  const extensions = u16();
  const end = Math.min(h.length, at + extensions);
  while (at + 4 <= end) {
    const type = u16();
    const len = u16();
    if (at + len > end) return undefined;
    if (type === 0) {
      let p = at + 2; // server_name_list length
      while (p + 3 <= at + len) {
        const nameType = h[p];
        const nameLen = (h[p + 1] << 8) | h[p + 2];
        p += 3;
        if (p + nameLen > at + len) return undefined;
        if (nameType === 0) {
          let name = "";
          for (let i = p; i < p + nameLen; i++) {
            const c = h[i];
            if (c <= 0x20 || c >= 0x7f) return undefined;
            name += String.fromCharCode(c);
          }
          return name.toLowerCase();
        }
        p += nameLen;
      }
      return undefined;
    }
    at += len;
  }
  return undefined;
}
