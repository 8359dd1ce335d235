/** Bearer authentication for the admin API, compared in constant time. */

const encoder = new TextEncoder();

async function digest(s: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(s)));
}

/** True when the Authorization header carries exactly `Bearer <key>`. Hashing first makes the comparison length-blind. */
export async function isAuthorized(header: string | null, key: string): Promise<boolean> {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? "");
  const given = await digest(m ? m[1].trim() : "");
  const wanted = await digest(key);
  let diff = m ? 0 : 1;
  for (let i = 0; i < wanted.length; i++) diff |= given[i] ^ wanted[i];
  return diff === 0;
}
