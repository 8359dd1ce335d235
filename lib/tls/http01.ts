/**
 * Pending HTTP-01 challenges (RFC 8555 §8.3): token → key authorization, answered on the plain HTTP
 * listener at /.well-known/acme-challenge/{token}.
 */
export const HTTP01_PREFIX = "/.well-known/acme-challenge/";

export interface Http01Challenges {
  set(token: string, keyAuthorization: string): void;
  delete(token: string): void;
  /** The response body for a request path, or undefined when no challenge is pending there. */
  respond(pathname: string): string | undefined;
}

/** An in-memory challenge table (one server answers the challenges of the orders it places). */
export function createHttp01Challenges(): Http01Challenges {
  const pending = new Map<string, string>();
  return {
    set: (token, keyAuthorization) => void pending.set(token, keyAuthorization),
    delete: (token) => void pending.delete(token),
    respond(pathname) {
      if (!pathname.startsWith(HTTP01_PREFIX)) return undefined;
      return pending.get(pathname.slice(HTTP01_PREFIX.length));
    },
  };
}
