/** HopGate's PSK convention: identity = the domain, key = the 32 bytes whose hex is the client API key. */

/** The raw PSK for a 64-hex-character client API key. */
export function pskFromApiKey(hex: string): Uint8Array {
  if (!/^[0-9a-fA-F]*$/.test(hex) || hex.length % 2 !== 0) {
    throw new Error("a client API key is hex of even length");
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}
