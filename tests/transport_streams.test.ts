/** Stream and connection behaviour over a memory link in simulated time. */
import { DatagramTooLargeError } from "../lib/dtls/session.ts";
import { INITIAL_STREAM_WINDOW } from "../lib/transport/connection.ts";
import { ConnectionClosedError, StreamResetError } from "../lib/transport/errors.ts";
import { decodePacket } from "../lib/transport/packet.ts";
import type { Stream } from "../lib/transport/stream.ts";
import type { TransportStream } from "../lib/transport/types.ts";
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { connectedPair, drive, driveFor, macrotask, readData, writeData } from "./support/transport_sim.ts";
import { sleep } from "./support/wait.ts";

function collectStreams(conn: { onStream(h: (s: TransportStream) => void): void }): TransportStream[] {
  const list: TransportStream[] = [];
  conn.onStream((s) => list.push(s));
  return list;
}

Deno.test("a reset stream does not disturb the others", async () => {
  const { clock, client, server } = connectedPair({ seed: 3, delayMs: 5, lossRate: 0.01 });
  const incoming = collectStreams(server);
  const work = (async () => {
    const streams = [await client.openStream(), await client.openStream(), await client.openStream()];
    const hashes = streams.map((s, i) => writeData(s, 4 * 1024 * 1024, 10 + i).catch((e) => e));
    while (incoming.length < 3) await macrotask();
    const reads = incoming.map((s) => readData(s).catch((e) => e));
    await sleep(0);
    streams[1].reset(42);
    return { hashes: await Promise.all(hashes), reads: await Promise.all(reads) };
  })();
  const { hashes, reads } = await drive(clock, work);
  assert(hashes[1] instanceof StreamResetError, "the writer of the reset stream fails");
  assert(reads[1] instanceof StreamResetError, "the reader of the reset stream fails");
  assertEquals((reads[1] as StreamResetError).errorCode, 42);
  assertEquals((reads[1] as StreamResetError).remote, true);
  for (const i of [0, 2]) {
    assertEquals(reads[i].bytes, 4 * 1024 * 1024, `stream ${i} length`);
    assertEquals(reads[i].sha256, hashes[i], `stream ${i} content`);
  }
  client.abort();
});

Deno.test("a stalled reader does not grow the sender's memory past its window", async () => {
  const { clock, client, server } = connectedPair({ delayMs: 5 });
  const incoming = collectStreams(server);
  const s = (await client.openStream()) as Stream;
  let written = 0;
  const writer = s.writable.getWriter();
  const chunk = new Uint8Array(16 * 1024);
  const writing = (async () => {
    for (let i = 0; i < 1000; i++) {
      await writer.write(chunk);
      written += chunk.length;
    }
  })();
  await driveFor(clock, 5_000);
  assertEquals(incoming.length, 1, "the server saw the stream");
  const sendSlack = 64 * 1024;
  assert(written < 16_000_000, "the writer is held back");
  assert(
    s.sendBufferedBytes <= INITIAL_STREAM_WINDOW + sendSlack + chunk.length,
    `sender holds ${s.sendBufferedBytes} bytes, more than window + slack`,
  );
  const peer = server.stream(s.id)!;
  assert(peer.recv.readyBytes <= INITIAL_STREAM_WINDOW, "the receiver holds at most its window");
  // Once the reader resumes, everything flows.
  const reading = readData(peer);
  await drive(clock, writing);
  await writer.close();
  const got = await drive(clock, reading);
  assertEquals(got.bytes, 1000 * chunk.length);
  client.abort();
});

Deno.test("a peer that vanishes is detected by the idle timeout and every stream errors", async () => {
  const { clock, link, client, server } = connectedPair({ delayMs: 5 }, {
    idleTimeoutMs: 3_000,
    keepAliveMs: 1_000,
  });
  collectStreams(server);
  const streams = [await client.openStream(), await client.openStream()];
  const reads = streams.map((s) => readData(s).catch((e) => e));
  const writes = streams.map((s) => writeData(s, 10 * 1024 * 1024, 5).catch((e) => e));
  await driveFor(clock, 50);
  link.cut();
  const t0 = clock.now();
  const info = await drive(clock, client.closed);
  assertEquals(info.kind, "idle_timeout");
  assert(clock.now() - t0 <= 3_100, "detected within the idle timeout");
  for (const r of await Promise.all([...reads, ...writes])) {
    assert(r instanceof ConnectionClosedError, `stream failed with ${r}`);
    assertEquals((r as ConnectionClosedError).info.kind, "idle_timeout");
  }
  assertEquals((await drive(clock, server.closed)).kind, "idle_timeout");
});

Deno.test("keep-alive PINGs hold an idle connection open", async () => {
  const { clock, client, server } = connectedPair({ delayMs: 5 }, {
    idleTimeoutMs: 3_000,
    keepAliveMs: 1_000,
  });
  let closed = false;
  client.closed.then(() => (closed = true));
  await driveFor(clock, 60_000);
  assert(!closed, "still open after 60 s idle");
  assert(client.stats().packetsSent >= 30, "keep-alives were sent");
  client.abort();
  await drive(clock, server.closed);
});

Deno.test("retransmits a lost STREAM frame after PTO", async () => {
  const { clock, link, client, server } = connectedPair({ delayMs: 10 });
  const incoming = collectStreams(server);
  const original = link.a.send.bind(link.a);
  let dropped = 0;
  link.a.send = (d: Uint8Array) => {
    if (dropped === 0 && decodePacket(d).frames.some((f) => f.type === "stream")) {
      dropped++;
      return;
    }
    original(d);
  };
  await driveFor(clock, 100); // an RTT sample from the handshake-free first exchange
  const s = await client.openStream();
  const sent = writeData(s, 1000, 9);
  const t0 = clock.now();
  const work = (async () => {
    while (incoming.length === 0) await macrotask();
    return await readData(incoming[0]);
  })();
  const got = await drive(clock, work);
  assertEquals(dropped, 1);
  assertEquals(got.sha256, await sent);
  const elapsed = clock.now() - t0;
  assert(elapsed > 20, `delivered after ${elapsed} ms: one round trip cannot have carried it`);
  assert(client.stats().retransmittedFrames >= 1, "the frame was retransmitted");
  client.abort();
});

Deno.test("packet size discovery reaches the link's max and a lost probe does not shrink cwnd", async () => {
  const { clock, link, client } = connectedPair({ delayMs: 5, pathMtu: 9000 });
  const cwnds: number[] = [];
  const original = link.a.send.bind(link.a);
  link.a.send = (d: Uint8Array) => {
    cwnds.push(client.stats().congestionWindow);
    original(d);
  };
  await driveFor(clock, 30_000);
  const size = client.stats().maxDatagramSize;
  assert(size <= 9000 && size >= 9000 - 32, `settled at ${size}`);
  assert(link.stats.aToB.dropped >= 3, "probes above the path MTU were lost");
  for (let i = 1; i < cwnds.length; i++) assert(cwnds[i] >= cwnds[i - 1], "cwnd never shrank");
  client.abort();
});

Deno.test("a session refusing a size (DatagramTooLargeError) ends the search there", async () => {
  const { clock, link, client, server } = connectedPair({ delayMs: 5 });
  const original = link.a.send.bind(link.a);
  link.a.send = (d: Uint8Array) => {
    if (d.length > 4000) throw new DatagramTooLargeError(d.length, 4000);
    original(d);
  };
  collectStreams(server);
  await driveFor(clock, 20_000);
  const size = client.stats().maxDatagramSize;
  assert(size <= 4000 && size >= 4000 - 32, `settled at ${size}`);
  const s = await client.openStream();
  const sent = writeData(s, 1_000_000, 1);
  const peer = await drive(
    clock,
    (async () => {
      while (server.stream(s.id) === undefined) await macrotask();
      return server.stream(s.id)!;
    })(),
  );
  const got = await drive(clock, readData(peer));
  assertEquals(got.sha256, await sent);
  client.abort();
});

Deno.test("graceful close delivers pending data, then CONNECTION_CLOSE", async () => {
  const { clock, client, server } = connectedPair({ delayMs: 5, lossRate: 0.05, seed: 9 });
  const incoming = collectStreams(server);
  const s = await client.openStream();
  const sent = writeData(s, 2_000_000, 3);
  const reading = (async () => {
    while (incoming.length === 0) await macrotask();
    return await readData(incoming[0]);
  })();
  await drive(clock, sent);
  const closing = client.close(0, "done");
  const got = await drive(clock, reading);
  await drive(clock, closing);
  assertEquals(got.sha256, await sent);
  const info = await drive(clock, server.closed);
  assertEquals(info, { kind: "remote", code: 0, reason: "done" });
  assertEquals((await client.closed).kind, "local");
});

Deno.test("abort errors every open stream on both sides with the reason", async () => {
  const { clock, client, server } = connectedPair({ delayMs: 5 });
  const incoming = collectStreams(server);
  const streams = [await client.openStream(), await client.openStream()];
  const writes = streams.map((s) => writeData(s, 10_000_000, 1).catch((e) => e));
  await driveFor(clock, 100);
  assertEquals(incoming.length, 2);
  const remoteReads = incoming.map((s) => readData(s).catch((e) => e));
  client.abort(7, "shutting down");
  for (const e of await Promise.all(writes)) {
    assert(e instanceof ConnectionClosedError);
    assertEquals(e.info.kind, "local");
  }
  const info = await drive(clock, server.closed);
  assertEquals(info, { kind: "remote", code: 7, reason: "shutting down" });
  for (const e of await Promise.all(remoteReads)) {
    assert(e instanceof ConnectionClosedError);
    assertEquals(e.info.reason, "shutting down");
  }
  await assertRejects(() => client.openStream(), ConnectionClosedError);
});

Deno.test("when the session closes the connection closes with session_closed", async () => {
  const { clock, link, client, server } = connectedPair({ delayMs: 5 });
  collectStreams(server);
  const s = await client.openStream();
  const reading = readData(s).catch((e) => e);
  link.a.close("gone");
  const info = await drive(clock, client.closed);
  assertEquals(info.kind, "session_closed");
  const e = await reading;
  assert(e instanceof ConnectionClosedError);
  assertEquals((await drive(clock, server.closed)).kind, "session_closed");
});

Deno.test("a small request is not starved by a bulk transfer on another stream", async () => {
  const { clock, client, server } = connectedPair({ delayMs: 10, bandwidthBytesPerSec: 10_000_000 });
  server.onStream((s) => {
    readData(s).then(async (got) => {
      const w = s.writable.getWriter();
      await w.write(new TextEncoder().encode(String(got.bytes)));
      await w.close();
    });
  });
  const bulk = await client.openStream();
  let bulkDoneAt = 0;
  const bulkWork = writeData(bulk, 20_000_000, 1).then(() => new Response(bulk.readable).text())
    .then(() => (bulkDoneAt = clock.now()));
  await driveFor(clock, 300);
  const t0 = clock.now();
  const small = await client.openStream();
  const smallWork = writeData(small, 500, 2).then(() => new Response(small.readable).text());
  assertEquals(await drive(clock, smallWork), "500");
  const smallTime = clock.now() - t0;
  await drive(clock, bulkWork);
  assert(smallTime < 500, `small request took ${smallTime} ms`);
  assert(bulkDoneAt - t0 > 1000, "the bulk transfer was still running");
  client.abort();
});

Deno.test("openStream waits for MAX_STREAMS credit, which finished streams return", async () => {
  const { clock, client, server } = connectedPair({ delayMs: 2 }, { maxIncomingStreams: 100 });
  let concurrent = 0;
  let peak = 0;
  server.onStream((s) => {
    concurrent++;
    peak = Math.max(peak, concurrent);
    readData(s).then(async () => {
      const w = s.writable.getWriter();
      await w.write(new Uint8Array([1]));
      await w.close();
      concurrent--;
    });
  });
  const opened: TransportStream[] = [];
  const work = Promise.all(Array.from({ length: 250 }, async () => {
    const s = await client.openStream();
    opened.push(s);
    await writeData(s, 1000, 1);
    return (await readData(s)).bytes;
  }));
  const sizes = await drive(clock, work);
  assertEquals(sizes.filter((n) => n === 1).length, 250);
  assert(peak <= 100, `the server never saw more than its limit (peak ${peak})`);
  assertEquals(new Set(opened.map((s) => s.id)).size, 250, "ids are unique");
  assert(opened.every((s) => s.id % 4 === 0), "client-initiated bidirectional ids");
  client.abort();
});

Deno.test("an onStream handler that throws resets that stream only", async () => {
  const { clock, client, server } = connectedPair({ delayMs: 2 });
  let calls = 0;
  server.onStream((s) => {
    if (calls++ === 0) throw new Error("handler bug");
    readData(s).then(async () => {
      const w = s.writable.getWriter();
      await w.write(new Uint8Array([7]));
      await w.close();
    });
  });
  const first = await client.openStream();
  const firstRead = readData(first).catch((e) => e);
  await writeData(first, 10, 1).catch(() => {});
  const second = await client.openStream();
  await writeData(second, 10, 2);
  const got = await drive(clock, readData(second));
  assertEquals(got.bytes, 1);
  const e = await drive(clock, firstRead);
  assert(e instanceof StreamResetError, `first stream failed with ${e}`);
  client.abort();
});

Deno.test("streams reset mid-transfer return their connection credit", async () => {
  // A connection window that cannot grow: any credit a reset stream kept would stall the last transfer.
  const { clock, client, server } = connectedPair({
    delayMs: 5,
    jitterMs: 4,
    reorderRate: 0.1,
    lossRate: 0.05,
    seed: 5,
  }, {
    connectionReceiveWindow: 1024 * 1024,
    maxConnectionReceiveWindow: 1024 * 1024,
  });
  server.onStream(async (s) => {
    const reader = s.readable.getReader();
    const { value } = await reader.read();
    if (value !== undefined && value[0] === 1) {
      reader.releaseLock();
      await readData(s);
      const w = s.writable.getWriter();
      await w.write(new Uint8Array([1]));
      await w.close();
    } else {
      s.reset(5); // stop reading after the first chunk, with megabytes still on the way
    }
  });
  const resets = Array.from({ length: 60 }, async () => {
    const s = await client.openStream();
    await writeData(s, 4 * 1024 * 1024, 3).catch(() => {});
  });
  await drive(clock, Promise.all(resets));
  await driveFor(clock, 2_000);
  assertEquals(server.connRecv.highestReceived, client.connSend.used, "every byte sent is accounted for");
  assertEquals(server.connRecv.consumed, server.connRecv.highestReceived, "and counted as consumed");
  const s = await client.openStream();
  const w = s.writable.getWriter();
  const big = new Uint8Array(64 * 1024).fill(1);
  const sending = (async () => {
    for (let i = 0; i < 400; i++) await w.write(big);
    await w.close();
    return (await readData(s)).bytes;
  })();
  assertEquals(await drive(clock, sending, 120_000), 1, "25 MB went through after 60 resets");
  client.abort();
});

Deno.test("pmtuMaxSize caps packet size discovery", async () => {
  const { clock, client } = connectedPair({ delayMs: 5 }, { pmtuMaxSize: 1452 });
  await driveFor(clock, 5_000);
  assertEquals(client.stats().maxDatagramSize, 1452);
  client.abort();
});

Deno.test("done resolves once both directions finish, and the stream is forgotten", async () => {
  const { clock, client, server } = connectedPair({ delayMs: 5 });
  const serverSide = new Promise<TransportStream>((resolve) => server.onStream(resolve));
  const c = await client.openStream();
  let doneAt = -1;
  c.done.then(() => (doneAt = clock.now()));
  await writeData(c, 100_000, 4);
  const s = await drive(clock, serverSide);
  await drive(clock, readData(s));
  await driveFor(clock, 100);
  assertEquals(doneAt, -1, "not done while the server's half is open");
  await writeData(s, 10, 5);
  await drive(clock, readData(c));
  await drive(clock, c.done);
  await drive(clock, s.done);
  await driveFor(clock, 100);
  assertEquals(client.stats().openStreams, 0);
  assertEquals(server.stats().openStreams, 0);
  client.abort();
});

Deno.test("both sides open streams at once: client ids 4n, server ids 4n + 1", async () => {
  const { clock, client, server } = connectedPair({ delayMs: 3, lossRate: 0.02, seed: 21 });
  const echo = (conn: typeof client) =>
    conn.onStream((s) => {
      readData(s).then(async (got) => {
        const w = s.writable.getWriter();
        await w.write(new TextEncoder().encode(got.sha256));
        await w.close();
      });
    });
  echo(client);
  echo(server);
  const roundTrip = async (conn: typeof client, i: number) => {
    const s = await conn.openStream();
    const sent = await writeData(s, 50_000, i);
    return { id: s.id, ok: (await new Response(s.readable).text()) === sent };
  };
  const results = await drive(
    clock,
    Promise.all([
      ...Array.from({ length: 10 }, (_, i) => roundTrip(client, i)),
      ...Array.from({ length: 10 }, (_, i) => roundTrip(server, 100 + i)),
    ]),
  );
  assert(results.every((r) => r.ok), "every exchange intact");
  assertEquals(results.slice(0, 10).map((r) => r.id % 4), Array(10).fill(0));
  assertEquals(results.slice(10).map((r) => r.id % 4), Array(10).fill(1));
  client.abort();
});
