/**
 * Stateless HelloVerifyRequest cookies (RFC 6347 §4.2.1): HMAC over the peer's address and the
 * ClientHello parameters the client must repeat. The secret rotates; the previous one still
 * verifies, so a cookie issued just before a rotation keeps working. No state per client.
 */
import { createHmac, randomBytes } from "node:crypto";
import { bytesEqual } from "./bytes.ts";
import type { ClientHello } from "./messages.ts";

export const COOKIE_LENGTH = 32;

export interface CookieJarOptions {
  /** How often the secret changes, in ms (default 5 minutes). */
  rotateMs?: number;
  now: () => number;
  /** Random source for secrets; injectable for tests. */
  random?: (n: number) => Uint8Array;
}

export class CookieJar {
  #current: Uint8Array;
  #previous: Uint8Array | null = null;
  #rotatedAt: number;
  readonly #rotateMs: number;
  readonly #now: () => number;
  readonly #random: (n: number) => Uint8Array;

  constructor(options: CookieJarOptions) {
    this.#now = options.now;
    this.#rotateMs = options.rotateMs ?? 300_000;
    this.#random = options.random ?? ((n) => new Uint8Array(randomBytes(n)));
    this.#current = this.#random(32);
    this.#rotatedAt = this.#now();
  }

  /** The cookie for this peer and hello. */
  issue(peer: string, hello: ClientHello): Uint8Array {
    this.#maybeRotate();
    return compute(this.#current, peer, hello);
  }

  /** True if the hello's cookie was issued to this peer under the current or previous secret. */
  verify(peer: string, hello: ClientHello): boolean {
    this.#maybeRotate();
    if (hello.cookie.length !== COOKIE_LENGTH) return false;
    if (bytesEqual(hello.cookie, compute(this.#current, peer, hello))) return true;
    return this.#previous !== null && bytesEqual(hello.cookie, compute(this.#previous, peer, hello));
  }

  /** Forces a rotation now (also happens lazily once rotateMs has passed). */
  rotate(): void {
    this.#previous = this.#current;
    this.#current = this.#random(32);
    this.#rotatedAt = this.#now();
  }

  #maybeRotate(): void {
    const elapsed = this.#now() - this.#rotatedAt;
    if (elapsed < this.#rotateMs) return;
    // After two periods of silence the previous secret is as stale as the current one.
    this.rotate();
    if (elapsed >= 2 * this.#rotateMs) this.#previous = null;
  }
}

function compute(secret: Uint8Array, peer: string, h: ClientHello): Uint8Array {
  const mac = createHmac("sha256", secret);
  mac.update(peer);
  mac.update(new Uint8Array([h.clientVersion >> 8, h.clientVersion & 0xff]));
  mac.update(h.random);
  mac.update(new Uint8Array([h.sessionId.length]));
  mac.update(h.sessionId);
  const suites = new Uint8Array(h.cipherSuites.length * 2);
  h.cipherSuites.forEach((s, i) => {
    suites[2 * i] = s >> 8;
    suites[2 * i + 1] = s & 0xff;
  });
  mac.update(suites);
  mac.update(h.compressionMethods);
  return new Uint8Array(mac.digest()).subarray(0, COOKIE_LENGTH);
}
