/**
 * Floods of a server's DTLS endpoint, shared by the tests that bound their effect
 * (security_dtls.test.ts) and the script that prints figures (attack_measure.ts): a server with
 * one registered domain, wrong-key handshakes, half-open handshakes from a separate process, and
 * one datagram packed with ClientHellos.
 */
import { startTestServer, type TestServer } from "./server.ts";
import { wireHandshake, type WireResult, type WireTarget } from "./dtls_wire.ts";
import { pskFromApiKey } from "../../lib/dtls/psk.ts";
import { ContentType, DTLS_1_0, HandshakeType } from "../../lib/dtls/constants.ts";
import { encodeClientHello, encodeHandshakeMessage } from "../../lib/dtls/messages.ts";
import { decodeRecords, encodeRecord } from "../../lib/dtls/record.ts";
import { makeScratchDir } from "./scratch.ts";

/** The domain registered on the flooded server. */
export const FLOOD_DOMAIN = "app.example.com";

export interface FloodEnv {
  server: TestServer;
  dataDir: string;
  /** The server's DTLS endpoint. */
  target: WireTarget;
  /** FLOOD_DOMAIN's PSK. */
  psk: Uint8Array;
}

/** Runs `fn` against a server process (info logs) with FLOOD_DOMAIN registered, then stops it. */
export async function withFloodServer(fn: (env: FloodEnv) => Promise<void>): Promise<void> {
  const dataDir = await makeScratchDir("hopgate-flood-");
  const server = await startTestServer({ dataDir, env: { HOP_LOG_LEVEL: "info" } });
  try {
    const res = await server.admin("/domains", {
      method: "POST",
      body: JSON.stringify({ domain: FLOOD_DOMAIN }),
    });
    if (res.status !== 201) throw new Error(`registering ${FLOOD_DOMAIN}: ${res.status} ${await res.text()}`);
    const key = (await res.json()).client_api_key as string;
    const [hostname, port] = String(server.ready.dtls).split(":");
    await fn({ server, dataDir, target: { hostname, port: Number(port) }, psk: pskFromApiKey(key) });
  } finally {
    await server.stop();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
}

export interface WrongKeyFloodOptions {
  /** The attackers' source address (127.0.0.x). */
  bind: string;
  /** Handshakes in parallel, each starting the next as soon as one ends. */
  attackers: number;
  durationMs: number;
  /** How long one handshake waits for an answer. */
  timeoutMs: number;
  resendMs?: number;
}

/** Full handshakes with a random PSK from one address; `done` resolves when the duration is over. */
export function startWrongKeyFlood(
  target: WireTarget,
  o: WrongKeyFloodOptions,
): { results: WireResult[]; done: Promise<void> } {
  const wrong = crypto.getRandomValues(new Uint8Array(32));
  const results: WireResult[] = [];
  const until = Date.now() + o.durationMs;
  const attacker = async () => {
    while (Date.now() < until) {
      results.push(
        await wireHandshake(target, {
          bind: o.bind,
          identity: FLOOD_DOMAIN,
          psk: wrong,
          timeoutMs: o.timeoutMs,
          resendMs: o.resendMs,
        }),
      );
    }
  };
  const done = Promise.all(Array.from({ length: o.attackers }, attacker)).then(() => {});
  return { results, done };
}

/**
 * Starts tests/support/half_open_flood.ts in its own process (its CPU must not slow the client a
 * test measures): `perAddress` cookie-verified handshakes from each of `addresses` loopback
 * addresses, wave after wave. `opened` resolves once the first wave is open, with how many are.
 */
export function startHalfOpenFlood(
  target: WireTarget,
  addresses: number,
  perAddress: number,
): { opened: Promise<number>; stop(): Promise<void> } {
  const attacker = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./half_open_flood.ts", import.meta.url).pathname,
      target.hostname,
      String(target.port),
      FLOOD_DOMAIN,
      String(addresses),
      String(perAddress),
    ],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const reader = attacker.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const opened = reader.read().then((first) => {
    if (first.done) throw new Error("the half-open flood ended before its first wave");
    return JSON.parse(first.value).ready as number;
  }).finally(() => reader.releaseLock());
  opened.catch(() => {});
  return {
    opened,
    async stop() {
      try {
        attacker.kill("SIGKILL");
      } catch { /* already gone */ }
      await attacker.status;
      await opened.catch(() => {});
      await attacker.stdout.cancel().catch(() => {});
    },
  };
}

/**
 * One datagram of cookie-less ClientHello records (fresh random, rising record sequence numbers):
 * `count` of them, or as many as fit in `maxBytes`.
 */
export function clientHelloDatagram(count: number, maxBytes = Infinity): Uint8Array {
  const fragment = encodeHandshakeMessage(
    HandshakeType.client_hello,
    0,
    encodeClientHello({
      clientVersion: 0xfefd,
      random: crypto.getRandomValues(new Uint8Array(32)),
      sessionId: new Uint8Array(0),
      cookie: new Uint8Array(0),
      cipherSuites: [0x00a8],
      compressionMethods: Uint8Array.of(0),
      extensions: [],
    }),
  );
  const record = (sequence: number) =>
    encodeRecord({
      type: ContentType.handshake,
      version: DTLS_1_0,
      epoch: 0,
      sequence,
      length: fragment.length,
      fragment,
    });
  const n = Math.min(count, Math.floor(maxBytes / record(0).length));
  const records = Array.from({ length: n }, (_, i) => record(i));
  const datagram = new Uint8Array(records.reduce((sum, r) => sum + r.length, 0));
  records.reduce((offset, r) => (datagram.set(r, offset), offset + r.length), 0);
  return datagram;
}

/** Sends `datagram` from a fresh socket and counts the records answered within `windowMs`. */
export async function countRecordReplies(
  target: WireTarget,
  datagram: Uint8Array,
  windowMs: number,
): Promise<number> {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    await socket.send(datagram, { transport: "udp", ...target });
    let replies = 0;
    const buf = new Uint8Array(65536);
    const until = Date.now() + windowMs;
    while (Date.now() < until) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const got = await Promise.race([
        socket.receive(buf),
        new Promise<null>((r) => (timer = setTimeout(() => r(null), until - Date.now()))),
      ]);
      clearTimeout(timer);
      if (got === null) break;
      replies += decodeRecords(got[0]).length;
    }
    return replies;
  } finally {
    socket.close();
  }
}
