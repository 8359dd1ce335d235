/**
 * The server half of scripts/bench_dtls.ts's client-CPU figures, run in a Worker so the client's
 * thread does nothing but the client's work. Counters are shared through a SharedArrayBuffer:
 * [0] records the server received, [1] records the client received (written by the main thread).
 */
import { startDtlsServer } from "../lib/dtls/server.ts";
import type { DatagramSession } from "../lib/dtls/session.ts";

type Command =
  | { cmd: "start"; shared: SharedArrayBuffer; identity: string; psk: Uint8Array }
  | { cmd: "send"; size: number; seconds: number; window: number }
  | { cmd: "stop" };

let counts: Int32Array;
let server: Awaited<ReturnType<typeof startDtlsServer>> | undefined;
let session: DatagramSession | undefined;
const scope = self as unknown as {
  postMessage(m: unknown): void;
  onmessage: ((e: MessageEvent<Command>) => void) | null;
  close(): void;
};
const post = (m: unknown) => scope.postMessage(m);

scope.onmessage = async (e: MessageEvent<Command>) => {
  const m = e.data;
  if (m.cmd === "start") {
    counts = new Int32Array(m.shared);
    server = await startDtlsServer({
      hostname: "127.0.0.1",
      port: 0,
      lookupPsk: (id) => Promise.resolve(id === m.identity ? m.psk : null),
      onSession: (s) => {
        session = s;
        s.onDatagram(() => {
          Atomics.add(counts, 0, 1);
          Atomics.notify(counts, 0);
        });
      },
    });
    post({ port: server.addr.port });
  } else if (m.cmd === "send") {
    const payload = crypto.getRandomValues(new Uint8Array(m.size));
    const end = performance.now() + m.seconds * 1000;
    let sent = 0;
    let lost = 0;
    while (performance.now() < end && session !== undefined) {
      const r = Atomics.load(counts, 1);
      while (sent - lost - Atomics.load(counts, 1) < m.window) {
        session.send(payload);
        sent++;
      }
      const w = Atomics.waitAsync(counts, 1, r, 50);
      if ((w.async ? await w.value : w.value) === "timed-out") lost = sent - Atomics.load(counts, 1);
    }
    post({ done: true });
  } else {
    await server?.close();
    post({ stopped: true });
    scope.close();
  }
};
