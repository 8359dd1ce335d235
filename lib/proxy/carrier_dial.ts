/**
 * Which carrier the client dials: DTLS on UDP, or the TCP carrier (TLS with ALPN hopgate/1) on the
 * same port number. In `auto` mode UDP is tried first; when no DTLS handshake completes within
 * about 3 s the client falls back to TCP and remembers it, and re-probes UDP in the background
 * (the caller decides when, with nextReprobeMs) so it moves back once UDP passes again.
 */
import { connectDtls } from "../dtls/client.ts";
import { DtlsAuthError } from "../dtls/errors.ts";
import type { DatagramSession } from "../dtls/session.ts";
import type { Logger } from "../log/logger.ts";

export type CarrierMode = "auto" | "udp" | "tcp";
export type Carrier = "udp" | "tcp";

export interface CarrierDialOptions {
  mode: CarrierMode;
  server: { hostname: string; port: number };
  identity: string;
  psk: Uint8Array;
  /** PEM of a private CA for the TCP carrier's certificate (HOP_CLIENT_CA_FILE). */
  caPem?: string;
  /** Name the server's certificate must carry when the address is an IP literal (HOP_CLIENT_SERVER_NAME). */
  serverName?: string;
  /** First background UDP re-probe after falling back to TCP (default 60 s); doubles up to 8×. */
  udpReprobeMs?: number;
  logger: Logger;
  signal: AbortSignal;
}

export interface Dialed {
  session: DatagramSession;
  carrier: Carrier;
}

/** Dials sessions by mode and remembers, in `auto` mode, the carrier that last worked. */
export class CarrierDialer {
  #preferred: Carrier;
  #reprobeMs: number;
  #tcpFailures = 0;
  readonly #o: CarrierDialOptions;

  constructor(o: CarrierDialOptions) {
    this.#o = o;
    this.#preferred = o.mode === "tcp" ? "tcp" : "udp";
    this.#reprobeMs = this.#baseReprobe;
  }

  get #baseReprobe(): number {
    return this.#o.udpReprobeMs ?? 60_000;
  }

  /** The carrier the next dial tries first. */
  get preferred(): Carrier {
    return this.#preferred;
  }

  /** Dials per the mode; rejects with the carrier's error (DtlsAuthError, CarrierCertificateError, …). */
  async dial(): Promise<Dialed> {
    const o = this.#o;
    if (o.mode === "udp") return { session: await this.#dtls(2000, 3), carrier: "udp" };
    if (o.mode === "tcp") return { session: await this.#tcp(), carrier: "tcp" };
    if (this.#preferred === "udp") {
      try {
        // Three 1 s attempts: about 3 s before concluding that UDP does not pass.
        return { session: await this.#dtls(1000, 3), carrier: "udp" };
      } catch (e) {
        // A rejected key is final; anything else (silence, an ICMP refusal) means UDP does not pass.
        if (e instanceof DtlsAuthError) throw e;
        o.logger.warn(
          { component: "tunnel", server: `${o.server.hostname}:${o.server.port}`, err: (e as Error).message },
          "no DTLS handshake completed over UDP within 3 s; falling back to TCP (TLS)",
        );
      }
      // Remembered only once TCP works: when both fail, the server is down, not UDP blocked.
      const session = await this.#tcp();
      this.#preferred = "tcp";
      this.#reprobeMs = this.#baseReprobe;
      this.#tcpFailures = 0;
      return { session, carrier: "tcp" };
    }
    try {
      const session = await this.#tcp();
      this.#tcpFailures = 0;
      return { session, carrier: "tcp" };
    } catch (e) {
      // The server may just be restarting (stay on TCP), or the network changed under us: after
      // three failures in a row, the next dial tries UDP first again.
      if (++this.#tcpFailures >= 3) this.#preferred = "udp";
      throw e;
    }
  }

  /** Delay before the next background UDP re-probe (auto mode on TCP); doubles each call up to 8× the base. */
  nextReprobeMs(): number {
    const ms = this.#reprobeMs;
    this.#reprobeMs = Math.min(this.#reprobeMs * 2, this.#baseReprobe * 8);
    return Math.round(ms * (0.8 + Math.random() * 0.4));
  }

  /** One background attempt at a DTLS session; null when UDP still does not pass. */
  async probeUdp(): Promise<DatagramSession | null> {
    try {
      const session = await this.#dtls(1000, 2);
      this.#preferred = "udp";
      this.#reprobeMs = this.#baseReprobe;
      return session;
    } catch {
      return null;
    }
  }

  #dtls(timeoutMs: number, attempts: number): Promise<DatagramSession> {
    const o = this.#o;
    return connectDtls({
      hostname: o.server.hostname,
      port: o.server.port,
      identity: o.identity,
      psk: o.psk,
      connectTimeoutMs: timeoutMs,
      maxAttempts: attempts,
      backoffInitialMs: 100,
      logger: o.logger,
      signal: o.signal,
    });
  }

  async #tcp(): Promise<DatagramSession> {
    const o = this.#o;
    // node:tls loads with the first TCP dial: a client that UDP serves never needs it (issue 13).
    const { connectTcp } = await import("../dtls/tcp_client.ts");
    return await connectTcp({
      hostname: o.server.hostname,
      port: o.server.port,
      serverName: o.serverName,
      caPem: o.caPem,
      identity: o.identity,
      psk: o.psk,
      signal: o.signal,
    });
  }
}
