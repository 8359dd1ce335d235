/** The tunnel's UDP sockets get a larger kernel receive buffer (lib/dtls/udp_buffer.ts). */
import { assert, assertEquals } from "./support/assert.ts";
import { enlargeReceiveBuffer, setUdpReceiveBuffer } from "../lib/dtls/udp_buffer.ts";
import { runDenoScript } from "./support/process.ts";

/** SO_RCVBUF as `ss` reports it for the socket on `port` (rb…). */
async function ssReceiveBuffer(port: number): Promise<number | undefined> {
  const out = await new Deno.Command("ss", { args: ["-uamn", `sport = :${port}`], stdout: "piped" }).output();
  const m = /rb(\d+)/.exec(new TextDecoder().decode(out.stdout));
  return m ? Number(m[1]) : undefined;
}

Deno.test("udp buffer: off by default; when asked, the socket's receive buffer grows and it still carries datagrams", async () => {
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (conn.addr as Deno.NetAddr).port;
  try {
    const before = await ssReceiveBuffer(port);
    assert(before !== undefined && before < 1024 * 1024, `default buffer ${before}`);
    assertEquals(enlargeReceiveBuffer(port), undefined, "nothing is done unless an entrypoint asks");
    setUdpReceiveBuffer(4 * 1024 * 1024);
    const got = enlargeReceiveBuffer(port);
    assert(got !== undefined && got >= 4 * 1024 * 1024, `reported ${got}`);
    assertEquals(await ssReceiveBuffer(port), got, "the kernel's view of the same socket");
    const peer = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      await peer.send(new Uint8Array([1, 2, 3]), { transport: "udp", hostname: "127.0.0.1", port });
      const [data] = await conn.receive();
      assertEquals(data, new Uint8Array([1, 2, 3]));
    } finally {
      peer.close();
    }
  } finally {
    setUdpReceiveBuffer(0);
    conn.close();
  }
});

Deno.test("udp buffer: without FFI permission nothing is tried (no prompt, no error)", async () => {
  const script = `import { enlargeReceiveBuffer, setUdpReceiveBuffer } from ${
    JSON.stringify(new URL("../lib/dtls/udp_buffer.ts", import.meta.url).href)
  };
const c = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
setUdpReceiveBuffer(4194304);
console.log(String(enlargeReceiveBuffer(c.addr.port)));
c.close();`;
  const out = await runDenoScript(script, ["--allow-read", "--allow-net", "--unstable-net"]);
  assertEquals(out.code, 0, out.stderr);
  assertEquals(out.stdout.trim(), "undefined");
});
