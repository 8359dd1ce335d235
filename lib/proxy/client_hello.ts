/**
 * The server name in a TLS ClientHello (RFC 8446 §4.1.2, RFC 6066 §3), read before node:tls sees
 * the connection: the front resolves the certificate first, so the SNI callback answers at once
 * (node:tls under Deno fails a handshake whose SNI callback answers in a later task).
 */

/** Bytes of the first TLS record when it is complete in buf, else -1 (0 when buf is no TLS handshake). */
export function helloRecordLength(buf: Uint8Array): number {
  if (buf.length < 1) return -1;
  if (buf[0] !== 0x16) return 0;
  if (buf.length < 5) return -1;
  const len = 5 + ((buf[3] << 8) | buf[4]);
  return buf.length >= len ? len : -1;
}

/** The host_name in a ClientHello record, or undefined (no SNI, malformed, split across records). */
export function serverNameOf(buf: Uint8Array): string | undefined {
  let p = 5;
  const end = Math.min(buf.length, 5 + ((buf[3] << 8) | buf[4]));
  const u8 = () => (p < end ? buf[p++] : -1);
  const u16 = () => {
    if (p + 2 > end) return -1;
    const v = (buf[p] << 8) | buf[p + 1];
    p += 2;
    return v;
  };
  if (buf[0] !== 0x16 || u8() !== 1) return undefined;
  p += 3 + 2 + 32; // handshake length, legacy_version, random
  const sid = u8();
  if (sid < 0) return undefined;
  p += sid;
  const suites = u16();
  if (suites < 0) return undefined;
  p += suites;
  const comp = u8();
  if (comp < 0) return undefined;
  p += comp;
  const extLen = u16();
  if (extLen < 0) return undefined;
  const extEnd = Math.min(end, p + extLen);
  while (p + 4 <= extEnd) {
    const type = u16();
    const len = u16();
    if (type !== 0) {
      p += len;
      continue;
    }
    const listEnd = Math.min(extEnd, p + 2 + u16());
    while (p + 3 <= listEnd) {
      const nameType = u8();
      const nameLen = u16();
      if (nameLen < 0 || p + nameLen > listEnd) return undefined;
      if (nameType === 0) {
        let name = "";
        for (let i = 0; i < nameLen; i++) name += String.fromCharCode(buf[p + i]);
        return /^[A-Za-z0-9.\-_]+$/.test(name) ? name.toLowerCase() : undefined;
      }
      p += nameLen;
    }
    return undefined;
  }
  return undefined;
}
