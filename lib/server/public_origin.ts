/** The public origin of served domains: its port is known once the fronts listen. */
import type { TlsMode } from "../config/server_config.ts";

/** `scheme://host[:port]`, the port left out when it is the scheme's standard one. */
export function origin(scheme: "http" | "https", host: string, port: number): string {
  const standard = scheme === "https" ? 443 : 80;
  return `${scheme}://${host}${port === standard ? "" : `:${port}`}`;
}

/** Where a served domain is reached; the fronts step sets `port`. */
export interface PublicOrigin {
  port: number;
  /** The public URL of a domain (told to its client in WELCOME). */
  url(domain: string): string;
}

/** The public origin for a TLS mode, its port 0 until the fronts listen. */
export function publicOrigin(tlsMode: TlsMode): PublicOrigin {
  const self: PublicOrigin = {
    port: 0,
    url: (domain) => origin(tlsMode === "off" ? "http" : "https", domain, self.port),
  };
  return self;
}
