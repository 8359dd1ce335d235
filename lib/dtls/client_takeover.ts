/**
 * Takes an established session away from npm:node-dtls-client 2.0.3 once its handshake is done.
 * The library's record path (a generic struct serializer, a cipher object and several buffer
 * concatenations per record, node:dgram underneath) costs the client more CPU than everything
 * else it does, so after "connected" we read the negotiated epoch-1 keys, write sequence and
 * replay window out of its internals and stop it; our own codec (record.ts, cipher.ts) carries
 * the records from then on. The internals are not exported API: every field is checked, and a
 * mismatch throws DtlsHandshakeError naming it, so a library upgrade fails loudly, never silently.
 */
import { DtlsHandshakeError } from "./errors.ts";
import { CipherSuiteId, DTLS_1_2 } from "./constants.ts";
import { RecordOpener, RecordSealer, SUITES } from "./cipher.ts";
import { ReplayWindow } from "./replay_window.ts";
import { libraryReplayWindow } from "./client_quirks.ts";

/** What the client's own record layer needs to carry on an established session. */
export interface TakenOverSession {
  sealer: RecordSealer;
  opener: RecordOpener;
  /** The write epoch (1 after the one handshake we do). */
  epoch: number;
  /** The next sequence number to send in `epoch`. */
  nextSeq: number;
  /** The read window of `epoch`, carrying what the library already accepted (the server's Finished). */
  window: ReplayWindow;
  /** The local UDP address the server knows this session by. */
  localAddress: string;
  localPort: number;
  family: "udp4" | "udp6";
}

interface LibKeyMaterial {
  client_write_key?: Uint8Array;
  server_write_key?: Uint8Array;
  client_write_IV?: Uint8Array;
  server_write_IV?: Uint8Array;
}
interface LibEpoch {
  index?: number;
  writeSequenceNumber?: number;
  antiReplayWindow?: object;
  connectionState?: {
    entity?: string;
    cipherSuite?: { id?: number; cipherType?: string; algorithm?: string };
    protocolVersion?: { major?: number; minor?: number };
    key_material?: LibKeyMaterial;
  };
}
interface LibSocket {
  _handshakeFinished?: boolean;
  _isClosed?: boolean;
  bufferedMessages?: unknown[];
  recordLayer?: { epochs?: LibEpoch[]; readEpochNr?: number; writeEpochNr?: number };
  udp?: {
    address(): { address: string; port: number; family?: string | number };
    removeAllListeners(event?: string): unknown;
    on(event: "error" | "message", f: (m: Uint8Array) => void): unknown;
    close(): unknown;
  };
  options?: { type?: string };
}

function fail(what: string): never {
  throw new DtlsHandshakeError(
    `cannot take over node-dtls-client's session: ${what} (was the library upgraded past 2.0.3?)`,
  );
}

function bytes(v: unknown, length: number, name: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== length) fail(`${name} is not ${length} bytes`);
  return new Uint8Array(v);
}

/** Reads the established session out of a connected library socket; throws before touching it if anything is off. */
export function readEstablished(socket: unknown): TakenOverSession {
  const s = socket as LibSocket;
  if (s._handshakeFinished !== true) fail("_handshakeFinished is not true");
  const rl = s.recordLayer;
  if (rl === undefined || !Array.isArray(rl.epochs)) fail("recordLayer.epochs is missing");
  if (rl.readEpochNr !== 1 || rl.writeEpochNr !== 1) {
    fail(`read/write epochs are ${rl.readEpochNr}/${rl.writeEpochNr}, expected 1/1`);
  }
  const e = rl.epochs[1];
  const cs = e?.connectionState;
  const suite = cs?.cipherSuite;
  if (suite?.id !== CipherSuiteId.TLS_PSK_WITH_AES_128_GCM_SHA256 || suite.algorithm !== "aes-128-gcm") {
    fail(`epoch 1 cipher suite is ${suite?.id}/${suite?.algorithm}, expected 0x00a8/aes-128-gcm`);
  }
  // The library stores versions as one's complements (~1, ~2); their low bytes are the wire value.
  const v = cs?.protocolVersion;
  if (v === undefined || ((((v.major ?? 0) & 0xff) << 8) | ((v.minor ?? 0) & 0xff)) !== DTLS_1_2) {
    fail("epoch 1 protocol version is not DTLS 1.2");
  }
  if (cs?.entity !== "client") fail(`connection entity is ${cs?.entity}, expected client`);
  const km = cs?.key_material;
  if (km === undefined) fail("epoch 1 has no key_material");
  const ws = e.writeSequenceNumber;
  if (typeof ws !== "number" || !Number.isInteger(ws) || ws < 0) fail(`writeSequenceNumber is ${ws}`);
  const udp = s.udp;
  if (udp === undefined || typeof udp.address !== "function") fail("the udp socket is missing");
  const local = udp.address();
  if (typeof local?.port !== "number" || local.port <= 0) fail("the udp socket has no local port");
  const aead = SUITES[CipherSuiteId.TLS_PSK_WITH_AES_128_GCM_SHA256];
  return {
    sealer: new RecordSealer(
      aead,
      bytes(km.client_write_key, 16, "client_write_key"),
      bytes(km.client_write_IV, 4, "client_write_IV"),
    ),
    opener: new RecordOpener(
      aead,
      bytes(km.server_write_key, 16, "server_write_key"),
      bytes(km.server_write_IV, 4, "server_write_IV"),
    ),
    epoch: 1,
    nextSeq: ws + 1,
    window: libraryReplayWindow(e.antiReplayWindow) ?? new ReplayWindow(),
    localAddress: local.address,
    localPort: local.port,
    family: s.options?.type === "udp6" ? "udp6" : "udp4",
  };
}

/**
 * Stops the library from sending or handling anything and routes what its UDP socket still
 * receives (datagrams queued before our socket was bound) to `onDatagram`. Returns the function
 * that finally closes that socket, which frees the local port.
 */
export function handOverLibrary(socket: unknown, onDatagram: (d: Uint8Array) => void): () => void {
  const s = socket as LibSocket;
  s._isClosed = true; // its send() refuses from now on
  s.bufferedMessages = [];
  const udp = s.udp;
  if (udp === undefined) return () => {};
  udp.removeAllListeners();
  // A late socket error must not become an unhandled "error" event.
  udp.on("error", () => {});
  udp.on("message", (m: Uint8Array) => onDatagram(m));
  let closed = false;
  return () => {
    if (closed) return;
    closed = true;
    udp.removeAllListeners("message");
    try {
      udp.close();
    } catch {
      // already closed
    }
  };
}
