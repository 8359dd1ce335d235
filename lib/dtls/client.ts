/**
 * The client side: a DatagramSession around npm:node-dtls-client. That library never retransmits
 * a handshake flight (one lost datagram stalls it until its timeout), so each attempt gets a
 * fresh socket, and failed attempts are retried with exponential backoff and jitter, except when
 * the server rejected our key: that cannot improve by retrying, so it fails at once.
 *
 * The library only does the handshake: once it is done, the session's keys, sequence numbers and
 * local port move to our own record layer (client_takeover.ts, client_records.ts) on our own
 * Deno.listenDatagram socket (client_udp.ts), the same codec and cipher the server uses.
 */
import { Buffer } from "node:buffer";
import { isIP } from "node:net";
import { lookup } from "node:dns/promises";
import { dtls } from "node-dtls-client";
import { type Logger, silentLogger } from "../log/logger.ts";
import { DtlsAuthError, DtlsError, DtlsHandshakeError, DtlsTimeoutError } from "./errors.ts";
import {
  type CloseReason,
  DatagramInbox,
  type DatagramSession,
  DatagramTooLargeError,
  type PeerAddress,
  SessionClosedError,
} from "./session.ts";
import { MAX_PLAINTEXT_LENGTH } from "./record.ts";
import { repairReplayWindow } from "./client_quirks.ts";
import { handOverLibrary, readEstablished, type TakenOverSession } from "./client_takeover.ts";
import { ClientRecordLayer, type Inbound, type RecordCounters } from "./client_records.ts";
import { ClientUdp } from "./client_udp.ts";
import { ContentType } from "./constants.ts";
import { isStaleSessionHint } from "./stale_hint.ts";

export type ClientCipherSuite = "TLS_PSK_WITH_AES_128_GCM_SHA256";

export interface ConnectDtlsOptions {
  hostname: string;
  port: number;
  /** PSK identity: the domain. */
  identity: string;
  /** The raw key (32 bytes for HopGate: the client API key decoded from hex). */
  psk: Uint8Array;
  /** Per attempt; node-dtls-client enforces at least 100 ms (default 3000). */
  connectTimeoutMs?: number;
  /** Attempts before giving up (default 5). */
  maxAttempts?: number;
  /** First backoff delay; doubles per attempt up to backoffMaxMs (defaults 250 and 5000 ms). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  cipherSuites?: ClientCipherSuite[];
  /** Largest payload `send` accepts (default 16 384). */
  maxDatagramSize?: number;
  logger?: Logger;
  signal?: AbortSignal;
  /** Random in [0, 1) for the jitter; injectable for tests. */
  random?: () => number;
}

/** Alerts that mean "your identity or key is wrong" (RFC 4279 §2, RFC 5246 §7.2.2). */
const AUTH_ALERTS = new Set(["decrypt_error", "bad_record_mac", "handshake_failure", "unknown_psk_identity"]);

/** Connects to a DTLS server; rejects with DtlsAuthError (no retry), DtlsTimeoutError or DtlsHandshakeError. */
export async function connectDtls(o: ConnectDtlsOptions): Promise<DatagramSession> {
  const log = (o.logger ?? silentLogger).child({ component: "dtls-client" });
  const maxAttempts = Math.max(1, o.maxAttempts ?? 5);
  const random = o.random ?? Math.random;
  // Resolved once: given a name, the library would look it up again for every datagram it sends.
  const address = await resolveAddress(o.hostname);
  let last: DtlsError | undefined;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    o.signal?.throwIfAborted();
    try {
      return await attemptHandshake(o, address);
    } catch (e) {
      if (e instanceof DtlsAuthError) throw e;
      last = e instanceof DtlsError ? e : new DtlsHandshakeError(String(e), { cause: e });
      log.debug({ attempt, err: last.message }, "dtls: handshake attempt failed");
    }
    if (attempt < maxAttempts) {
      const base = Math.min(o.backoffMaxMs ?? 5000, (o.backoffInitialMs ?? 250) * 2 ** (attempt - 1));
      await sleep(base / 2 + (random() * base) / 2, o.signal);
    }
  }
  if (last instanceof DtlsTimeoutError || last === undefined) {
    throw new DtlsTimeoutError(
      `DTLS handshake with ${o.hostname}:${o.port} timed out ${maxAttempts} times; is the server reachable?`,
      maxAttempts,
    );
  }
  throw last;
}

/** An IP literal as is; a name through the system resolver, IPv4 first (the common case behind NAT). */
async function resolveAddress(hostname: string): Promise<string> {
  if (isIP(hostname) !== 0) return hostname;
  try {
    const all = await lookup(hostname, { all: true });
    return (all.find((a) => a.family === 4) ?? all[0]).address;
  } catch (e) {
    throw new DtlsHandshakeError(`cannot resolve DTLS server "${hostname}": ${(e as Error).message}`, {
      cause: e,
    });
  }
}

function attemptHandshake(o: ConnectDtlsOptions, address: string): Promise<DatagramSession> {
  return new Promise((resolve, reject) => {
    const socket = dtls.createSocket({
      type: isIP(address) === 6 ? "udp6" : "udp4",
      address,
      port: o.port,
      // The library hashes a Buffer as is; a string would be taken as ASCII and mangle binary keys.
      psk: { [o.identity]: Buffer.from(o.psk) },
      ciphers: o.cipherSuites ?? ["TLS_PSK_WITH_AES_128_GCM_SHA256"],
      timeout: o.connectTimeoutMs ?? 3000,
    });
    const onError = (e: Error) => {
      socket.off("connected", onConnected);
      reject(classifyHandshakeError(e, o));
    };
    const onConnected = () => {
      socket.off("error", onError);
      if (!repairReplayWindow(socket)) {
        (o.logger ?? silentLogger).warn(
          "dtls: could not repair node-dtls-client's replay window (library changed?)",
        );
      }
      // From here on the records are ours (client_takeover.ts); the library only did the handshake.
      let taken: TakenOverSession;
      try {
        taken = readEstablished(socket);
      } catch (e) {
        socket.close(); // the library's own close_notify: the server forgets the half-built session
        reject(e);
        return;
      }
      // Application data that arrived during the handshake, which the library would emit next.
      const early = takeLibraryBuffered(socket);
      ClientSession.open(socket, taken, address, early, o).then(resolve, reject);
    };
    socket.once("error", onError);
    socket.once("connected", onConnected);
  });
}

/** The plaintexts the library buffered during its handshake; it will not emit them after this. */
function takeLibraryBuffered(socket: unknown): Uint8Array[] {
  const s = socket as { bufferedMessages?: Array<{ msg?: { data?: Uint8Array } }> };
  const out: Uint8Array[] = [];
  for (const m of s.bufferedMessages ?? []) if (m.msg?.data instanceof Uint8Array) out.push(m.msg.data);
  s.bufferedMessages = [];
  return out;
}

/** Maps node-dtls-client's error messages (its only signal) to our typed errors. */
function classifyHandshakeError(e: Error, o: ConnectDtlsOptions): DtlsError {
  const msg = e?.message ?? String(e);
  const alert = /received fatal alert: (\w+)/.exec(msg)?.[1];
  if (alert !== undefined && AUTH_ALERTS.has(alert)) {
    return new DtlsAuthError(`server rejected the PSK for identity "${o.identity}" (alert ${alert})`, alert);
  }
  // The library's own Finished check failed: the server proved a different key.
  if (msg === "DTLS handshake failed") {
    return new DtlsAuthError(
      `server's Finished did not verify for identity "${o.identity}"`,
      "decrypt_error",
    );
  }
  if (/timed out/.test(msg)) {
    return new DtlsTimeoutError(`DTLS handshake with ${o.hostname}:${o.port} timed out`, 1);
  }
  return new DtlsHandshakeError(`DTLS handshake with ${o.hostname}:${o.port} failed: ${msg}`, { cause: e });
}

const MAX_EARLY_DATAGRAMS = 64;
/** How long the library's socket stays ours after the handshake: enough to read what was queued on it. */
const LIBRARY_GRACE_MS = 10;
let nextId = 1;

/** Which code carries the session's records; "own" is the only one this adapter uses after the handshake. */
export type ClientRecordPath = "own";

class ClientSession implements DatagramSession {
  readonly id: string;
  readonly identity: string;
  readonly remoteAddress: PeerAddress;
  readonly maxDatagramSize: number;
  readonly closed: Promise<CloseReason>;
  /** Exposed so tests (and the admin view) can prove no record went through node-dtls-client. */
  readonly recordPath: ClientRecordPath = "own";
  #resolveClosed!: (r: CloseReason) => void;
  #reason: CloseReason | undefined;
  readonly #inbox: DatagramInbox;
  #pathHint: (() => void) | null = null;
  readonly #records: ClientRecordLayer;
  #udp: ClientUdp | null = null;
  readonly #log: Logger;

  /**
   * Moves the session off the library. Its socket first feeds our record layer for a short grace
   * (what the server sent right after its Finished is already queued there), then closes, and
   * ours binds the same local port. No SO_REUSEADDR: with it, the kernel may hand two sockets the
   * same ephemeral port, and the server keys sessions by port. The session is resolved only once
   * our socket is bound, so nothing of ours is in flight across the swap.
   */
  static async open(
    library: unknown,
    taken: TakenOverSession,
    address: string,
    early: Uint8Array[],
    o: ConnectDtlsOptions,
  ): Promise<ClientSession> {
    const session = new ClientSession(taken, early, o);
    // Records after the server's Finished in the same datagram are still emitted by the library
    // (it is in the middle of that datagram); they arrive here as plaintext.
    (library as { on(e: "message", f: (m: Uint8Array) => void): void }).on(
      "message",
      (m) => session.#onInbound({ kind: "data", data: new Uint8Array(m.buffer, m.byteOffset, m.byteLength) }),
    );
    const closeLibrary = handOverLibrary(library, (d) => session.#onDatagram(d));
    await new Promise((r) => setTimeout(r, LIBRARY_GRACE_MS));
    closeLibrary();
    try {
      session.#udp = await ClientUdp.bindAfterClose({
        family: taken.family,
        localPort: taken.localPort,
        localAddress: taken.localAddress,
        peer: { transport: "udp", hostname: address, port: o.port },
        onDatagram: (d) => session.#onDatagram(d),
        onError: (e) => session.#finish({ code: "socket_error", message: String(e), remote: false }),
      });
    } catch (e) {
      session.#finish({ code: "socket_error", message: String(e), remote: false });
      throw new DtlsHandshakeError(
        `handshake done, but local UDP port ${taken.localPort} could not be bound again: ${String(e)}`,
        { cause: e },
      );
    }
    if (session.#reason !== undefined) {
      throw new DtlsHandshakeError(`the session ended right after its handshake: ${session.#reason.message}`);
    }
    return session;
  }

  private constructor(taken: TakenOverSession, early: Uint8Array[], o: ConnectDtlsOptions) {
    this.id = `c${(nextId++).toString(36)}`;
    this.identity = o.identity;
    this.remoteAddress = { hostname: o.hostname, port: o.port };
    this.maxDatagramSize = Math.min(o.maxDatagramSize ?? MAX_PLAINTEXT_LENGTH, MAX_PLAINTEXT_LENGTH);
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#records = new ClientRecordLayer(taken);
    this.#inbox = new DatagramInbox(MAX_EARLY_DATAGRAMS, early);
    this.#log = (o.logger ?? silentLogger).child({ component: "dtls-client" });
  }

  /** Records sealed, opened and dropped by our own record layer. */
  get recordCounters(): Readonly<RecordCounters> {
    return this.#records.counters;
  }

  /** The local UDP port (the server's key for this session). */
  get localPort(): number {
    return this.#udp?.localPort ?? 0;
  }

  send(data: Uint8Array): void {
    if (this.#reason !== undefined) throw new SessionClosedError(this.#reason);
    if (data.length > this.maxDatagramSize) {
      throw new DatagramTooLargeError(data.length, this.maxDatagramSize);
    }
    const record = this.#records.seal(ContentType.application_data, data);
    if (record === null) {
      this.#end({ code: "closed", message: "record sequence numbers exhausted", remote: false }, false);
      throw new SessionClosedError(this.#reason);
    }
    this.#udp?.send(record);
  }

  onDatagram(receiver: ((data: Uint8Array) => void) | null): void {
    this.#inbox.set(receiver);
  }

  onPathHint(listener: (() => void) | null): void {
    this.#pathHint = listener;
  }

  close(message = "closed locally"): void {
    this.#end({ code: "closed", message, remote: false }, true);
  }

  #onDatagram(datagram: Uint8Array): void {
    if (this.#reason !== undefined) return;
    // The stale-session hint is an epoch-0 record our layer drops; it is read before it.
    if (isStaleSessionHint(datagram)) {
      this.#pathHint?.();
      return;
    }
    this.#records.receive(datagram, this.#onInbound);
  }

  readonly #onInbound = (r: Inbound): void => {
    if (this.#reason !== undefined) return;
    if (r.kind === "data") {
      if (r.data.length > this.maxDatagramSize) return;
      this.#inbox.deliver(r.data);
    } else if (r.kind === "close_notify") {
      // RFC 5246 §7.2.1: answer with our own close_notify and close down at once.
      this.#end({ code: "close_notify", message: "server sent close_notify", remote: true }, true);
    } else {
      this.#end({ code: "alert", message: `received fatal alert: ${r.alert}`, remote: true }, false);
    }
  };

  /** Ends the session: optionally sends close_notify, then closes the socket once it has left. */
  #end(reason: CloseReason, sendCloseNotify: boolean): void {
    if (this.#reason !== undefined) return;
    if (sendCloseNotify) {
      const alert = this.#records.closeNotify();
      if (alert !== null) this.#udp?.send(alert);
    }
    this.#finish(reason);
  }

  #finish(reason: CloseReason): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    this.#inbox.clear();
    this.#pathHint = null;
    this.#resolveClosed(reason);
    this.#udp?.close().catch((e) => this.#log.debug({ err: String(e) }, "dtls: closing the socket failed"));
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
