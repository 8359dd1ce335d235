/** Classifies a failure before the local response head: could the service not be reached at all? */
import { LocalRequestError } from "./local_http_types.ts";

// Connecting failed: nothing listens, the name does not resolve, the host is unreachable, or it timed out.
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_NONAME",
  "EAI_FAIL",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
]);

/** The LocalRequestError for a node error raised before the response head. */
export function localFailure(origin: URL, e: Error & { code?: string }): LocalRequestError {
  const code = e.code ?? (e.cause as { code?: string } | undefined)?.code ?? "";
  const unreachable = UNREACHABLE_CODES.has(code) || /connection refused|os error 111/i.test(e.message);
  return new LocalRequestError(
    unreachable ? "local_unreachable" : "local_error",
    `${origin.host}: ${e.message}${code && !e.message.includes(code) ? ` (${code})` : ""}`,
    { cause: e },
  );
}
