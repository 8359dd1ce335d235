/**
 * A UDP tap between one DTLS client and a server, for the client's record-layer tests: it
 * forwards both ways, keeps copies of the server→client datagrams, and can send the client any
 * datagram from the server's apparent address (the tap's), so replays and forgeries look real.
 */
export interface ClientTap {
  readonly port: number;
  /** Every server→client datagram forwarded so far (copies). */
  readonly toClient: Uint8Array[];
  /** Sends a datagram to the client as if the server had sent it. */
  injectToClient(datagram: Uint8Array): Promise<void>;
  /** Rewrites server→client datagrams before forwarding; null drops them. */
  mangleToClient: ((d: Uint8Array) => Uint8Array | null) | null;
  close(): Promise<void>;
}

/** Starts a tap in front of `target` on a port of its own choosing (127.0.0.1). */
export function startClientTap(target: { hostname: string; port: number }): ClientTap {
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const server: Deno.NetAddr = { transport: "udp", hostname: target.hostname, port: target.port };
  let client: Deno.NetAddr | undefined;
  const toClient: Uint8Array[] = [];
  const tap: ClientTap = {
    port: (conn.addr as Deno.NetAddr).port,
    toClient,
    mangleToClient: null,
    async injectToClient(d) {
      if (client === undefined) throw new Error("tap: no client has spoken yet");
      await conn.send(d, client);
    },
    async close() {
      conn.close();
      await loop;
    },
  };
  const loop = (async () => {
    for (;;) {
      let data: Uint8Array;
      let from: Deno.NetAddr;
      try {
        const [d, a] = await conn.receive();
        data = d;
        from = a as Deno.NetAddr;
      } catch {
        return;
      }
      if (from.port === server.port && from.hostname === server.hostname) {
        if (client === undefined) continue;
        toClient.push(data.slice());
        const out = tap.mangleToClient === null ? data : tap.mangleToClient(data);
        if (out !== null) await conn.send(out, client).catch(() => {});
      } else {
        client = from;
        await conn.send(data, server).catch(() => {});
      }
    }
  })();
  return tap;
}
