/**
 * Transport scenarios every carrier must pass (DTLS on UDP, TLS on TCP): the same test bodies, run by
 * tests/transport_dtls.test.ts and tests/tcp_carrier.test.ts on their own connection pairs.
 */
import type { Connection } from "../../lib/transport/connection.ts";
import type { ConnectionStats, TransportStream } from "../../lib/transport/types.ts";
import { assert, assertEquals } from "./assert.ts";
import { readData, writeData } from "./transport_sim.ts";

const MB = 1024 * 1024;

/** A connected pair on some carrier. */
export interface CarrierPair {
  client: Connection;
  server: Connection;
  close(): Promise<void>;
}

/** A graceful close delivers the data first, then the peer sees the close. */
export async function gracefulCloseDelivers(pair: CarrierPair): Promise<void> {
  try {
    const incoming = new Promise<TransportStream>((resolve) => pair.server.onStream(resolve));
    const c = await pair.client.openStream();
    const wrote = writeData(c, 4 * MB, 3);
    const reading = incoming.then(readData);
    await wrote;
    await pair.client.close(0, "bye");
    const got = await reading;
    assertEquals(got.sha256, await wrote);
    const info = await pair.server.closed;
    assert(info.kind === "remote" || info.kind === "session_closed", `server saw ${info.kind}`);
  } finally {
    await pair.close();
  }
}

/** 10 MB each way arrive intact over a pair whose sessions drop datagrams; losses were repaired. */
export async function lossRepaired(pair: CarrierPair): Promise<void> {
  try {
    const incoming = new Promise<TransportStream>((resolve) => pair.server.onStream(resolve));
    const c = await pair.client.openStream();
    const cWrote = writeData(c, 10 * MB, 5);
    const s = await incoming;
    const sWrote = writeData(s, 10 * MB, 6);
    const [cGot, sGot] = await Promise.all([readData(c), readData(s)]);
    assertEquals(sGot.sha256, await cWrote);
    assertEquals(cGot.sha256, await sWrote);
    assert(pair.client.stats().retransmittedFrames > 0, "losses were repaired");
  } finally {
    await pair.close();
  }
}

/**
 * 50 MB each way arrive intact (both ends in one thread); returns the client's stats for the
 * carrier's own checks, and logs the time.
 */
export async function bulkBothWays(pair: CarrierPair, carrier: string): Promise<ConnectionStats> {
  try {
    const incoming = new Promise<TransportStream>((resolve) => pair.server.onStream(resolve));
    const t0 = performance.now();
    const c = await pair.client.openStream();
    const cWrote = writeData(c, 50 * MB, 1);
    const s = await incoming;
    const sWrote = writeData(s, 50 * MB, 2);
    const [cGot, sGot] = await Promise.all([readData(c), readData(s)]);
    const seconds = (performance.now() - t0) / 1000;
    assertEquals([sGot.bytes, cGot.bytes], [50 * MB, 50 * MB]);
    assertEquals(sGot.sha256, await cWrote);
    assertEquals(cGot.sha256, await sWrote);
    const stats = pair.client.stats();
    console.log(
      `100 MB over ${carrier} (both ends in one thread) in ${seconds.toFixed(2)} s, ${JSON.stringify(stats)}`,
    );
    return stats;
  } finally {
    await pair.close();
  }
}
