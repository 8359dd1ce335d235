/** Test support: drive connections over a memory link in simulated time, and stream checksummed data. */
import { createHash } from "node:crypto";
import { ManualClock } from "./manual_clock.ts";
import { Connection, type ConnectionOptions } from "../../lib/transport/connection.ts";
import { createMemoryLink, type MemoryLink, type MemoryLinkOptions } from "../../lib/testing/memory_link.ts";
import type { TransportStream } from "../../lib/transport/types.ts";

// The simulated-time drivers live with the clock; re-exported for the transport tests.
export { drive, driveFor, macrotask } from "./manual_clock.ts";

export interface Pair {
  clock: ManualClock;
  link: MemoryLink;
  client: Connection;
  server: Connection;
}

/** A client and a server connection over one memory link, in simulated time. */
export function connectedPair(
  link: Omit<MemoryLinkOptions, "clock"> = {},
  options: Partial<ConnectionOptions> = {},
): Pair {
  const clock = new ManualClock();
  const l = createMemoryLink({ ...link, clock });
  const client = new Connection(l.a, { ...options, role: "client", clock });
  const server = new Connection(l.b, { ...options, role: "server", clock });
  return { clock, link: l, client, server };
}

/** Deterministic bytes: a block of pseudo-random data that chunks are cut from (never modified). */
export function dataBlock(size: number, seed: number): Uint8Array {
  const b = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

const BLOCK = dataBlock(1 << 20, 7);

/** Writes `total` bytes in varying chunk sizes, then closes; resolves with the SHA-256 of what was written. */
export async function writeData(stream: TransportStream, total: number, seed: number): Promise<string> {
  const hash = createHash("sha256");
  const writer = stream.writable.getWriter();
  let sent = 0;
  let i = seed;
  while (sent < total) {
    i = (i * 1103515245 + 12345) >>> 0;
    const size = Math.min(total - sent, 1 + (i % 48_000));
    const start = i % (BLOCK.length - size);
    const chunk = BLOCK.subarray(start, start + size);
    hash.update(chunk);
    await writer.write(chunk);
    sent += size;
  }
  await writer.close();
  return hash.digest("hex");
}

/** Reads a stream to its end; resolves with its length and SHA-256. */
export async function readData(stream: TransportStream): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of stream.readable) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { bytes, sha256: hash.digest("hex") };
}
