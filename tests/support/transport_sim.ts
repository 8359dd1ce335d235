/** Test support: drive connections over a memory link in simulated time, and stream checksummed data. */
import { createHash } from "node:crypto";
import { setImmediate } from "node:timers";
import { ManualClock } from "./manual_clock.ts";
import { Connection, type ConnectionOptions } from "../../lib/transport/connection.ts";
import { createMemoryLink, type MemoryLink, type MemoryLinkOptions } from "./memory_link.ts";
import type { TransportStream } from "../../lib/transport/types.ts";

/**
 * Yields one event-loop turn so every pending microtask (stream reads and writes) runs first.
 * setImmediate is a real macrotask and not clamped like a nested setTimeout(0); a MessageChannel
 * message is not a full turn in Deno.
 */
export function macrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Runs simulated time until `work` settles; fails past maxSimMs of simulated time. `turns`: event-loop
 * turns to let pass before each step, more than one when connections defer flushes with setImmediate.
 */
export async function drive<T>(
  clock: ManualClock,
  work: Promise<T>,
  maxSimMs = 600_000,
  turns = 1,
): Promise<T> {
  let settled = false;
  work.then(() => (settled = true), () => (settled = true));
  const limit = clock.now() + maxSimMs;
  let idle = 0;
  await loop();
  return await work;

  async function loop(): Promise<void> {
    while (!settled) {
      for (let i = 0; i < turns; i++) await macrotask();
      if (settled) break;
      const next = clock.nextTimerAt();
      if (next === undefined) {
        if (++idle > 1000) throw new Error("simulation stalled: no timers and the work has not settled");
        continue;
      }
      idle = 0;
      if (next > limit) throw new Error(`simulation exceeded ${maxSimMs} ms of simulated time`);
      clock.advance(Math.max(0, next - clock.now()));
    }
  }
}

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

/** Runs simulated time for `ms`, letting microtasks settle at each step. */
export async function driveFor(clock: ManualClock, ms: number): Promise<void> {
  const until = clock.now() + ms;
  for (;;) {
    await macrotask();
    const next = clock.nextTimerAt();
    if (next === undefined || next > until) break;
    clock.advance(Math.max(0, next - clock.now()));
  }
  await macrotask();
  clock.advance(Math.max(0, until - clock.now()));
  await macrotask();
}
