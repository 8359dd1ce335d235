/**
 * Pending HTTP-01 challenges (RFC 8555 §8.3): token → key authorization, answered on the plain HTTP
 * listener at /.well-known/acme-challenge/{token}. Kept in memory for this server's orders and, when
 * a shared table is given, there too, so any server behind the same address can answer.
 */
export const HTTP01_PREFIX = "/.well-known/acme-challenge/";

/** Where challenges are shared between servers (the database). */
export interface SharedChallenges {
  put(token: string, keyAuthorization: string): Promise<void>;
  get(token: string): Promise<string | null>;
  remove(token: string): Promise<void>;
}

export interface Http01Challenges {
  set(token: string, keyAuthorization: string): Promise<void>;
  delete(token: string): Promise<void>;
  /** The response body for a request path, or undefined when no challenge is pending there. */
  respond(pathname: string): Promise<string | undefined>;
}

// RFC 8555 §8.1: tokens are base64url, at least 128 bits of entropy.
const TOKEN = /^[A-Za-z0-9_-]{16,255}$/;

/** A challenge table in memory, backed by `shared` when given. */
export function createHttp01Challenges(shared?: SharedChallenges): Http01Challenges {
  const pending = new Map<string, string>();
  return {
    async set(token, keyAuthorization) {
      pending.set(token, keyAuthorization);
      await shared?.put(token, keyAuthorization);
    },
    async delete(token) {
      pending.delete(token);
      await shared?.remove(token);
    },
    async respond(pathname) {
      if (!pathname.startsWith(HTTP01_PREFIX)) return undefined;
      const token = pathname.slice(HTTP01_PREFIX.length);
      if (!TOKEN.test(token)) return undefined;
      return pending.get(token) ?? (await shared?.get(token).catch(() => null)) ?? undefined;
    },
  };
}
