/** Bearer authentication for the admin API, compared in constant time. */
import { createHash, timingSafeEqual } from "node:crypto";

function digest(s: string): Uint8Array {
  return createHash("sha256").update(s).digest();
}

/**
 * True when the Authorization header carries exactly `Bearer <key>`. Hashing first makes the
 * comparison length-blind. Synchronous, so that a caller's rate-limit check and its record of a
 * failure happen in one turn of the event loop (parallel guesses cannot all pass the check first).
 */
export function isAuthorized(header: string | null, key: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? "");
  const given = digest(m ? m[1].trim() : "");
  return timingSafeEqual(given, digest(key)) && m !== null;
}
