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
  if (e instanceof LocalRequestError) return e;
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

/** The LocalRequestError for a request node refuses to write (it throws before sending anything). */
export function unsendable(origin: URL, e: Error): LocalRequestError {
  return new LocalRequestError("bad_request", `${origin.host}: the request cannot be sent: ${e.message}`, {
    cause: e,
  });
}

/** Reports a request that could not be started, after the caller got its exchange back. */
export function refuseLater(
  error: LocalRequestError,
  handler: { error(e: LocalRequestError): void },
  body: { cancel(reason?: Error): void } | null,
): { abort(): void } {
  let aborted = false;
  body?.cancel(error);
  queueMicrotask(() => {
    if (!aborted) handler.error(error);
  });
  return { abort: () => void (aborted = true) };
}
