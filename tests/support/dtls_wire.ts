/**
 * DTLS handshakes over real UDP sockets from a chosen loopback source address (127.0.0.x are
 * distinct sources), built on the scripted FakeClient: a full handshake (right or wrong key) or a
 * half-open one that stops after flight 4, as an attacker would.
 */
import { ContentType, DTLS_1_0, DTLS_1_2, HandshakeType } from "../../lib/dtls/constants.ts";
import {
  decodeHandshakeFragments,
  encodeClientHello,
  encodeHandshakeMessage,
} from "../../lib/dtls/messages.ts";
import { decodeRecords, type DtlsRecord, encodeRecord } from "../../lib/dtls/record.ts";
import { FakeClient } from "./dtls_fake_client.ts";

export interface WireTarget {
  hostname: string;
  port: number;
}

export type WireResult = "established" | "failed" | "half_open" | "no_answer";

export interface WireOptions {
  /** Source address to bind, e.g. 127.0.0.7. */
  bind: string;
  identity: string;
  psk: Uint8Array;
  /** Stop after flight 4 (a half-open handshake) instead of finishing. */
  halfOpen?: boolean;
  /** Give up after this long (default 3000 ms). */
  timeoutMs?: number;
  /** Resend the current flight this often while no answer comes (default 250 ms). */
  resendMs?: number;
  /** Keep the socket open (half-open floods: the server sees a live peer); closed by the caller. */
  keepSocket?: (socket: Deno.DatagramConn) => void;
}

function record(seq: number, fragment: Uint8Array, version = DTLS_1_2): Uint8Array {
  return encodeRecord({
    type: ContentType.handshake,
    version,
    epoch: 0,
    sequence: seq,
    length: fragment.length,
    fragment,
  });
}

function cookieOf(datagram: Uint8Array): Uint8Array | null {
  for (const r of decodeRecords(datagram)) {
    if (r.type !== ContentType.handshake) continue;
    for (const f of decodeHandshakeFragments(r.fragment)) {
      if (f.msgType === HandshakeType.hello_verify_request) return f.body.slice(3, 3 + f.body[2]);
    }
  }
  return null;
}

function datagramOf(records: DtlsRecord[]): Uint8Array {
  const parts = records.map((r) => encodeRecord(r));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Runs one handshake from `bind`; resolves with how far it got. */
export async function wireHandshake(target: WireTarget, o: WireOptions): Promise<WireResult> {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: o.bind, port: 0 });
  const to: Deno.NetAddr = { transport: "udp", hostname: target.hostname, port: target.port };
  const deadline = Date.now() + (o.timeoutMs ?? 3000);
  const resendMs = o.resendMs ?? 250;
  const fc = new FakeClient({ identity: o.identity, psk: o.psk, ems: true });
  let keep = false;
  try {
    // Flight 1 (no cookie) until a HelloVerifyRequest; then flight 3 with the cookie.
    const first = { ...fc.hello, cookie: new Uint8Array(0) };
    const hello1 = record(
      0,
      encodeHandshakeMessage(HandshakeType.client_hello, 0, encodeClientHello(first)),
      DTLS_1_0,
    );
    const cookie = await exchange(socket, to, [hello1], deadline, resendMs, cookieOf);
    if (cookie === null) return "no_answer";
    fc.hello.cookie = cookie;
    const body = encodeClientHello(fc.hello);
    fc.transcript[0] = encodeHandshakeMessage(HandshakeType.client_hello, 1, body);
    const hello3 = record(1, encodeHandshakeMessage(HandshakeType.client_hello, 1, body));
    const flight4 = await exchange(socket, to, [hello3], deadline, resendMs, (d) => {
      const seen = fc.receiveFlight4([d]);
      return seen.includes(HandshakeType.server_hello_done) ? true : null;
    });
    if (flight4 === null) return "no_answer";
    if (o.halfOpen) {
      if (o.keepSocket) {
        keep = true;
        o.keepSocket(socket);
      }
      return "half_open";
    }
    fc.epoch0.nextSeq = 2;
    const flight5 = datagramOf(fc.flight5());
    const outcome = await exchange(socket, to, [flight5], deadline, resendMs, (d) => {
      for (const r of decodeRecords(d)) {
        if (r.type === ContentType.alert) return "failed" as const;
      }
      return fc.verifyFlight6([d]) ? "established" as const : null;
    });
    return outcome ?? "failed";
  } finally {
    if (!keep) socket.close();
  }
}

/** Sends `datagrams` and resends them every `resendMs` until `accept` returns non-null or the deadline passes. */
async function exchange<T>(
  socket: Deno.DatagramConn,
  to: Deno.NetAddr,
  datagrams: Uint8Array[],
  deadline: number,
  resendMs: number,
  accept: (d: Uint8Array) => T | null,
): Promise<T | null> {
  const buf = new Uint8Array(65536);
  let pending: Promise<[Uint8Array, Deno.Addr]> | null = null;
  while (Date.now() < deadline) {
    for (const d of datagrams) await socket.send(d, to).catch(() => 0);
    const resendAt = Math.min(deadline, Date.now() + resendMs);
    while (Date.now() < resendAt) {
      pending ??= socket.receive(buf);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const got = await Promise.race([
        pending,
        new Promise<null>((r) => (timer = setTimeout(() => r(null), resendAt - Date.now()))),
      ]);
      clearTimeout(timer);
      if (got === null) break;
      pending = null;
      const r = accept(got[0].slice());
      if (r !== null) return r;
    }
  }
  // An unresolved receive would leak an op: closing the socket (the caller's finally) ends it.
  pending?.catch(() => {});
  return null;
}
