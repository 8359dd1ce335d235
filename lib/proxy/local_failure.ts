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
  const code = e.code ?? "";
  // A stream cancelled because its session failed to connect carries the connect error as its cause.
  const causeCode = (e.cause as { code?: string } | undefined)?.code ?? "";
  const unreachable = UNREACHABLE_CODES.has(code) || UNREACHABLE_CODES.has(causeCode);
  return new LocalRequestError(
    unreachable ? "local_unreachable" : "local_error",
    `${origin.host}: ${e.message}${code && !e.message.includes(code) ? ` (${code})` : ""}`,
    { cause: e },
  );
}
