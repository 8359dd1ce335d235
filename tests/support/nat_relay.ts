/**
 * A UDP relay that behaves like a NAT: the client talks to one socket, the relay talks to the
 * server from another, and rebind() swaps that outgoing socket for a fresh one (a new source port)
 * as a home router or a mobile network does when its mapping expires.
 */
export interface NatRelay {
  readonly port: number;
  /** The server now sees the client at a new address; replies to the old one are lost. */
  rebind(): void;
  close(): void;
}

/** Starts the relay in front of `target`. */
export function startNatRelay(target: { hostname: string; port: number }): NatRelay {
  const front = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const to: Deno.NetAddr = { transport: "udp", hostname: target.hostname, port: target.port };
  let client: Deno.NetAddr | undefined;
  let closed = false;
  let back = open();

  function open(): Deno.DatagramConn {
    const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    (async () => {
      for (;;) {
        let data: Uint8Array;
        try {
          [data] = await conn.receive();
        } catch {
          return;
        }
        // Only the current mapping forwards: the old one is gone, as on a real NAT.
        if (conn === back && client) front.send(data, client).catch(() => {});
      }
    })();
    return conn;
  }

  (async () => {
    while (!closed) {
      let data: Uint8Array;
      let from: Deno.Addr;
      try {
        [data, from] = await front.receive();
      } catch {
        return;
      }
      client = from as Deno.NetAddr;
      back.send(data, to).catch(() => {});
    }
  })();

  return {
    port: (front.addr as Deno.NetAddr).port,
    rebind() {
      const old = back;
      back = open();
      old.close();
    },
    close() {
      closed = true;
      front.close();
      back.close();
    },
  };
}
