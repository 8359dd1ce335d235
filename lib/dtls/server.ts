/**
 * The DTLS 1.2 PSK server: one UDP socket (Deno.listenDatagram, one reused receive buffer),
 * many associations keyed by the peer's address. Before a client returns a valid cookie nothing
 * is stored for it (RFC 6347 §4.2.1); after, a ServerHandshake runs, then a ServerSession.
 */
import { randomBytes } from "node:crypto";
import { type Clock, systemClock, type TimerId } from "../log/clock.ts";
import { type Logger, silentLogger } from "../log/logger.ts";
import { bytesEqual } from "./bytes.ts";
import type { AeadSuite } from "./cipher.ts";
import { enlargeReceiveBuffer } from "./udp_buffer.ts";
import { AlertDescription, ContentType, HandshakeType } from "./constants.ts";
import { CookieJar } from "./cookie.ts";
import { type EstablishedHandshake, ServerHandshake } from "./handshake.ts";
import { handshakeFailureRecord, helloVerifyRequestRecord, parseInitialHello, selectSuite } from "./hello.ts";
import type { ClientHello } from "./messages.ts";
import {
  MAX_CIPHERTEXT_EXPANSION,
  newRecordHeader,
  readRecordHeader,
  RECORD_HEADER_LENGTH,
  type RecordHeader,
} from "./record.ts";
import { ServerSession } from "./server_session.ts";
import { type DtlsServerLimits, resolveLimits } from "./limits.ts";
import { HandshakeAdmission } from "./admission.ts";
import { HintLimiter, STALE_SESSION_HINT } from "./stale_hint.ts";

export type { DtlsServerLimits };
import type { DatagramSession, PeerAddress } from "./session.ts";

export interface DtlsServerOptions {
  hostname: string;
  port: number;
  /** The PSK for an identity (the domain), or null when unknown. */
  lookupPsk: (identity: string) => Promise<Uint8Array | null>;
  /** Called for each session whose handshake completed. */
  onSession: (session: DatagramSession) => void;
  logger?: Logger;
  clock?: Clock;
  limits?: DtlsServerLimits;
  /** Cipher suites in preference order; only TLS_PSK_WITH_AES_128_GCM_SHA256 is implemented. */
  cipherSuites?: number[];
  /** Optional PSK identity hint, sent in a ServerKeyExchange. */
  identityHint?: string;
  /** Answer protected records from an address without a session with the stale-session hint (default true). */
  staleSessionHints?: boolean;
}

export interface DtlsServerStats {
  /** Datagrams received since start. */
  datagrams: number;
  /** Handshakes in progress now (bounded by the limits). */
  handshakes: number;
  /** Handshakes completed since start (each made a session). */
  handshakesCompleted: number;
  /** Handshakes that failed since start: wrong key or identity, timeout, protocol error, replaced. */
  handshakesFailed: number;
  sessions: number;
  /** Datagrams or records dropped as malformed, unexpected or over a limit. */
  dropped: number;
  helloVerifyRequests: number;
  /** ClientHellos dropped by the per-address rate limits (hello rate, failure budget). */
  handshakesRateLimited: number;
  /** Half-open handshakes dropped to make room for one from a less busy address. */
  handshakesEvicted: number;
}

export interface DtlsServer {
  readonly addr: PeerAddress;
  sessions(): DatagramSession[];
  stats(): DtlsServerStats;
  /** Closes (close_notify) every session of an identity, e.g. when its domain is deleted or its key rotated. */
  closeSessions(identity: string, message: string): number;
  /** Sends close_notify to every session, stops listening and resolves when the socket is closed. */
  close(): Promise<void>;
}

type Peer =
  | { kind: "handshake"; hs: ServerHandshake; clientRandom: Uint8Array }
  | { kind: "session"; session: ServerSession; clientRandom: Uint8Array };

/** Starts a DTLS server; port 0 picks a free port (see `addr`). */
export function startDtlsServer(options: DtlsServerOptions): Promise<DtlsServer> {
  const conn = Deno.listenDatagram({ transport: "udp", hostname: options.hostname, port: options.port });
  const receiveBuffer = enlargeReceiveBuffer((conn.addr as Deno.NetAddr).port);
  if (receiveBuffer !== undefined) {
    options.logger?.info({ component: "dtls", receive_buffer: receiveBuffer }, "UDP receive buffer enlarged");
  }
  return Promise.resolve(new Server(conn, options));
}

class Server implements DtlsServer {
  readonly addr: PeerAddress;
  readonly #conn: Deno.DatagramConn;
  readonly #o: DtlsServerOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #limits: Required<DtlsServerLimits>;
  readonly #cookies: CookieJar;
  readonly #peers = new Map<string, Peer>();
  readonly #admission: HandshakeAdmission;
  readonly #header: RecordHeader = newRecordHeader();
  readonly #hints = new HintLimiter();
  #handshakeCount = 0;
  #sessionCount = 0;
  #dropped = 0;
  #datagrams = 0;
  #handshakesCompleted = 0;
  #hvrs = 0;
  #closed = false;
  #socketClosed = false;
  #sweepTimer: TimerId | undefined;
  #inflight = 0;
  #drained: (() => void) | null = null;
  readonly #loop: Promise<void>;

  constructor(conn: Deno.DatagramConn, o: DtlsServerOptions) {
    this.#conn = conn;
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.#log = (o.logger ?? silentLogger).child({ component: "dtls" });
    this.#limits = resolveLimits(o.limits);
    this.#cookies = new CookieJar({ now: () => this.#clock.now(), rotateMs: this.#limits.cookieRotateMs });
    this.#admission = new HandshakeAdmission(this.#limits, () => this.#clock.now(), this.#log);
    const a = conn.addr as Deno.NetAddr;
    this.addr = { hostname: a.hostname, port: a.port };
    this.#scheduleSweep();
    this.#loop = this.#receiveLoop();
  }

  sessions(): DatagramSession[] {
    const out: DatagramSession[] = [];
    for (const p of this.#peers.values()) if (p.kind === "session") out.push(p.session);
    return out;
  }

  stats(): DtlsServerStats {
    const admission = this.#admission.stats();
    return {
      datagrams: this.#datagrams,
      handshakes: admission.handshakes,
      handshakesCompleted: this.#handshakesCompleted,
      handshakesFailed: admission.failed,
      sessions: this.#sessionCount,
      dropped: this.#dropped,
      helloVerifyRequests: this.#hvrs,
      handshakesRateLimited: admission.rateLimited,
      handshakesEvicted: admission.evicted,
    };
  }

  closeSessions(identity: string, message: string): number {
    let n = 0;
    for (const p of [...this.#peers.values()]) {
      if (p.kind === "session" && p.session.identity === identity) {
        p.session.terminate({ code: "closed", message, remote: false }, AlertDescription.close_notify);
        n++;
      }
    }
    return n;
  }

  async close(): Promise<void> {
    if (this.#closed) return this.#loop;
    this.#closed = true;
    if (this.#sweepTimer !== undefined) this.#clock.clearTimeout(this.#sweepTimer);
    for (const p of [...this.#peers.values()]) {
      if (p.kind === "handshake") p.hs.abort("server shutting down");
      else {
        p.session.terminate(
          { code: "server_shutdown", message: "server shutting down", remote: false },
          AlertDescription.close_notify,
        );
      }
    }
    // Let the close_notify datagrams leave before the socket goes.
    if (this.#inflight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    this.#socketClosed = true;
    this.#conn.close();
    await this.#loop;
  }

  async #receiveLoop(): Promise<void> {
    // One buffer for every datagram: the handlers copy whatever must outlive the call.
    const buf = new Uint8Array(65536);
    while (!this.#closed) {
      let data: Uint8Array;
      let addr: Deno.Addr;
      try {
        [data, addr] = await this.#conn.receive(buf);
      } catch (e) {
        if (this.#closed) return;
        this.#log.warn({ err: String(e) }, "dtls: receive failed");
        continue;
      }
      this.#datagrams++;
      try {
        this.#handleDatagram(data, addr as Deno.NetAddr);
      } catch (e) {
        // A bug must not take the listener down with it; the datagram is lost, nothing else.
        this.#dropped++;
        this.#log.error({ err: String(e) }, "dtls: datagram handler failed");
      }
    }
  }

  /**
   * Hands one datagram to the socket. Errors are logged, not thrown: UDP gives no delivery
   * promise anyway. The two callbacks are fields so the per-record path allocates no closures.
   */
  #send(addr: Deno.NetAddr, datagram: Uint8Array): void {
    if (this.#socketClosed) return;
    this.#inflight++;
    this.#conn.send(datagram, addr).then(this.#onSent, this.#onSendFailed);
  }

  readonly #onSent = (): void => {
    if (--this.#inflight === 0 && this.#drained !== null) this.#drained();
  };

  readonly #onSendFailed = (e: unknown): void => {
    this.#onSent();
    this.#log.debug({ err: String(e) }, "dtls: send failed");
  };

  #handleDatagram(data: Uint8Array, addr: Deno.NetAddr): void {
    const key = `${addr.hostname}|${addr.port}`;
    const h = this.#header;
    const maxRecord = this.#limits.maxDatagramSize + MAX_CIPHERTEXT_EXPANSION;
    let offset = 0;
    let hellos = 0;
    while (offset < data.length) {
      let end: number;
      try {
        end = readRecordHeader(data, offset, h);
      } catch {
        this.#dropped++;
        return; // RFC 6347 §4.1.2.7: an unparseable remainder is discarded
      }
      const fragment = data.subarray(offset + RECORD_HEADER_LENGTH, end);
      offset = end;
      if (h.length > maxRecord || (h.version >> 8) !== 0xfe) {
        this.#dropped++;
        continue;
      }
      const peer = this.#peers.get(key);
      if (h.epoch === 0 && h.type === ContentType.handshake && fragment[0] === HandshakeType.client_hello) {
        // One ClientHello per datagram: a datagram packed with hellos must not buy many answers.
        if (hellos++ > 0) {
          this.#dropped++;
          continue;
        }
        this.#handleClientHello(h, fragment, addr, key, peer);
      } else if (peer?.kind === "handshake") peer.hs.handleRecord(h, fragment);
      else if (peer?.kind === "session") peer.session.handleRecord(h, fragment);
      else this.#onStrayRecord(h, addr, key);
    }
  }

  /**
   * A record from an address we have no association for. A protected one means a client still
   * believes in a session we lost (restart, NAT rebinding): it gets the stale-session hint
   * (stale_hint.ts), so it probes its path and reconnects without waiting for its idle timeout.
   */
  #onStrayRecord(h: RecordHeader, addr: Deno.NetAddr, key: string): void {
    this.#dropped++;
    if (h.epoch === 0 || this.#o.staleSessionHints === false || this.#closed) return;
    if (this.#hints.allow(key, this.#clock.now())) this.#send(addr, STALE_SESSION_HINT);
  }

  /** Flights 1 and 3: answer without state until the cookie checks out, then start a handshake. */
  #handleClientHello(
    h: RecordHeader,
    fragment: Uint8Array,
    addr: Deno.NetAddr,
    key: string,
    peer?: Peer,
  ): void {
    if (!this.#admission.withinRate(addr.hostname)) {
      this.#dropped++;
      return;
    }
    const initial = parseInitialHello(fragment);
    if (initial === null) {
      this.#dropped++;
      return;
    }
    const { hello, messageSeq, body } = initial;
    if (peer !== undefined && bytesEqual(peer.clientRandom, hello.random)) {
      // A repeated flight 3: the handshake answers it; a late copy after the session is up is
      // ignored, or it would pass the cookie check and replace the very session it created.
      if (peer.kind === "handshake") peer.hs.handleRecord(h, fragment);
      return;
    }
    if (!this.#cookies.verify(key, hello)) {
      this.#hvrs++;
      this.#sendTo(addr, helloVerifyRequestRecord(h.sequence, messageSeq, this.#cookies.issue(key, hello)));
      return;
    }
    const suite = selectSuite(hello, this.#o.cipherSuites);
    if (suite === undefined) {
      this.#sendTo(addr, handshakeFailureRecord(h.sequence));
      return;
    }
    const associations = this.#admission.count + this.#sessionCount - (peer !== undefined ? 1 : 0);
    const evict = (victim: string) => {
      const p = this.#peers.get(victim);
      if (p?.kind === "handshake") {
        p.hs.abort("evicted: every handshake slot is taken and its address holds the most");
      }
    };
    if (!this.#admission.admit(addr.hostname, peer?.kind === "handshake", associations, evict)) {
      this.#dropped++;
      return;
    }
    // Eviction may have ended the association this hello would replace.
    peer = this.#peers.get(key);
    // RFC 6347 §4.2.8: a valid cookie from the address of a live association means the client
    // restarted; it has proven it owns the address, so the old association gives way.
    if (peer?.kind === "session") {
      peer.session.terminate({ code: "closed", message: "client restarted: new handshake", remote: true });
    } else if (peer?.kind === "handshake") peer.hs.abort("replaced by a new ClientHello");
    this.#startHandshake(hello, { messageSeq, body: body.slice(), recordSeq: h.sequence }, suite, addr, key);
  }

  #startHandshake(
    hello: ClientHello,
    message: { messageSeq: number; body: Uint8Array; recordSeq: number },
    suite: AeadSuite,
    addr: Deno.NetAddr,
    key: string,
  ): void {
    const ip = addr.hostname;
    this.#admission.started(ip, key);
    const remote: PeerAddress = { hostname: addr.hostname, port: addr.port };
    const to: Deno.NetAddr = { transport: "udp", hostname: addr.hostname, port: addr.port };
    const peer: Peer = {
      kind: "handshake",
      clientRandom: hello.random.slice(),
      hs: undefined as unknown as ServerHandshake, // set just below; onDone never runs synchronously
    };
    peer.hs = new ServerHandshake(
      {
        clock: this.#clock,
        logger: this.#log,
        lookupPsk: this.#o.lookupPsk,
        send: (d) => this.#sendTo(to, d),
        mtu: this.#limits.handshakeMtu,
        retransmitInitialMs: this.#limits.retransmitInitialMs,
        retransmitMaxMs: this.#limits.maxRetransmitMs,
        timeoutMs: this.#limits.handshakeTimeoutMs,
        identityHint: this.#o.identityHint,
      },
      hello,
      message,
      suite,
      (result) => {
        this.#admission.ended(ip, key);
        if (this.#peers.get(key) === peer) this.#peers.delete(key);
        if (!result.ok) {
          this.#admission.failed(ip, key, peer.hs.identity, result.reason, this.#closed);
          return;
        }
        if (!this.#closed) this.#openSession(result.established, remote, key, peer.clientRandom);
      },
    );
    this.#peers.set(key, peer);
  }

  /**
   * The session a finished handshake hands over. Its closures live here, not in #startHandshake:
   * a closure there shares that scope's context, which holds the peer and so the whole finished
   * ServerHandshake (transcript, flights, randoms): ~4 kB kept for the session's life (issue 13).
   */
  #openSession(
    established: EstablishedHandshake,
    remote: PeerAddress,
    key: string,
    clientRandom: Uint8Array,
  ): void {
    const to: Deno.NetAddr = { transport: "udp", hostname: remote.hostname, port: remote.port };
    const session = new ServerSession({
      id: randomId(),
      remoteAddress: remote,
      established,
      maxDatagramSize: this.#limits.maxDatagramSize,
      sendDatagram: (d) => this.#send(to, d),
      now: () => this.#clock.now(),
      logger: this.#log,
      onEnded: (s) => {
        this.#sessionCount--;
        const cur = this.#peers.get(key);
        if (cur?.kind === "session" && cur.session === s) this.#peers.delete(key);
      },
    });
    this.#handshakesCompleted++;
    this.#sessionCount++;
    this.#peers.set(key, { kind: "session", session, clientRandom });
    this.#log.info(
      { session: session.id, domain: session.identity, peer: key },
      "dtls: session established",
    );
    try {
      this.#o.onSession(session);
    } catch (e) {
      this.#log.error({ err: String(e) }, "dtls: onSession threw");
    }
  }

  /** Handshake traffic: nothing new starts once the server is closing. */
  #sendTo(addr: Deno.NetAddr, datagram: Uint8Array): void {
    if (!this.#closed) this.#send(addr, datagram);
  }

  /** Closes sessions that have been silent past the idle timeout; one timer for all of them. */
  #scheduleSweep(): void {
    const every = Math.max(10, Math.min(1000, this.#limits.idleTimeoutMs / 4));
    this.#sweepTimer = this.#clock.setTimeout(() => {
      const cutoff = this.#clock.now() - this.#limits.idleTimeoutMs;
      for (const p of [...this.#peers.values()]) {
        if (p.kind === "session" && p.session.lastReceivedAt < cutoff) {
          const message = `no datagram for ${this.#limits.idleTimeoutMs} ms`;
          p.session.terminate(
            { code: "idle_timeout", message, remote: false },
            AlertDescription.close_notify,
          );
        }
      }
      if (!this.#closed) this.#scheduleSweep();
    }, every);
  }
}

function randomId(): string {
  return Array.from(randomBytes(6), (b) => b.toString(16).padStart(2, "0")).join("");
}
