/** Helpers shared by the DTLS tests: keys, an echo server, free ports, OpenSSL processes. */
import { type DtlsServer, type DtlsServerOptions, startDtlsServer } from "../../lib/dtls/server.ts";
import type { DatagramSession } from "../../lib/dtls/session.ts";

export const IDENTITY = "tunnel.example.com";
/** A 32-byte PSK; its hex is what a HopGate client API key looks like. */
export const PSK = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);

export function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export function lookupFor(table: Record<string, Uint8Array>): (id: string) => Promise<Uint8Array | null> {
  return (id) => Promise.resolve(Object.hasOwn(table, id) ? table[id] : null);
}

/** Starts a server on 127.0.0.1:0 whose sessions echo every datagram back. */
export async function startEchoServer(
  extra: Partial<DtlsServerOptions> = {},
): Promise<{ server: DtlsServer; sessions: DatagramSession[] }> {
  const sessions: DatagramSession[] = [];
  const server = await startDtlsServer({
    hostname: "127.0.0.1",
    port: 0,
    lookupPsk: lookupFor({ [IDENTITY]: PSK }),
    onSession: (s) => {
      sessions.push(s);
      s.onDatagram((d) => {
        try {
          s.send(d);
        } catch { /* the session closed under us; the test will notice */ }
      });
    },
    ...extra,
  });
  return { server, sessions };
}

/** A UDP port that was free a moment ago (bind to 0, read it, close). */
export function freeUdpPort(): number {
  const c = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (c.addr as Deno.NetAddr).port;
  c.close();
  return port;
}

/** Collects a child process's stdout text as it arrives. */
export function collectText(stream: ReadableStream<Uint8Array>): { text: () => string; done: Promise<void> } {
  let buf = "";
  const dec = new TextDecoder();
  const done = (async () => {
    for await (const chunk of stream) buf += dec.decode(chunk, { stream: true });
  })();
  return { text: () => buf, done };
}
