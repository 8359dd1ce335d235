/**
 * The HTTP/1.1 connection driver on an in-memory carrier: random and mutated request streams, cut
 * at random points, never throw out of the driver, and every byte the handler saw belongs to a
 * request the parser accepted.
 */
import { assert } from "./support/assert.ts";
import { latin1Bytes, latin1String } from "../lib/protocol/body.ts";
import { seededRandom } from "../lib/testing/seeded_random.ts";
import type { Carrier, CarrierEvents } from "../lib/proxy/carrier.ts";
import { frontLimits } from "../lib/proxy/front_limits.ts";
import { systemClock } from "../lib/log/clock.ts";
import { serveHttp1 } from "../lib/proxy/http1/connection.ts";
import { readBody } from "./support/front_fixture.ts";
import { sleep } from "./support/wait.ts";

function memoryCarrier(): {
  carrier: Carrier;
  events: () => CarrierEvents;
  out: string[];
  closed: () => boolean;
} {
  let ev: CarrierEvents | null = null;
  let closed = false;
  const out: string[] = [];
  const close = () => {
    if (closed) return;
    closed = true;
    ev?.close();
  };
  const carrier: Carrier = {
    remoteAddr: "192.0.2.1",
    remotePort: 1234,
    get closed() {
      return closed;
    },
    listen: (e) => (ev = e),
    write: (c) => {
      out.push(latin1String(c));
      return true;
    },
    onDrain: () => {},
    pause: () => {},
    resume: () => {},
    end: close,
    destroy: close,
  };
  return { carrier, events: () => ev!, out, closed: () => closed };
}

Deno.test("fuzz: the connection driver survives random and mutated request streams", async () => {
  const rnd = seededRandom(2024);
  const valid = [
    "GET /a HTTP/1.1\r\nHost: a\r\n\r\n",
    "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
    "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\nT: 1\r\n\r\n",
    "GET /d HTTP/1.0\r\n\r\n",
    "GET /u HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n",
  ];
  const limits = frontLimits({
    maxHeadBytes: 512,
    maxTargetBytes: 128,
    idleTimeoutMs: 60_000,
    headTimeoutMs: 60_000,
  });
  let requests = 0;
  for (let i = 0; i < 1500; i++) {
    const m = memoryCarrier();
    const conn = serveHttp1(m.carrier, {
      proto: "http",
      limits,
      clock: systemClock,
      handler: async (req, res) => {
        requests++;
        assert(/^\/[a-z]$/.test(req.target) || req.target.length > 0, "target");
        try {
          await readBody(req);
        } catch { /* the stream broke */ }
        if (m.closed()) return;
        res.head(200, "OK", [["Content-Length", "1"]]);
        res.body.write(latin1Bytes("k"));
        res.body.end(null);
      },
    });
    let wire = Array.from(
      { length: 1 + Math.floor(rnd() * 4) },
      () => valid[Math.floor(rnd() * valid.length)],
    ).join("");
    const bytes = latin1Bytes(wire);
    if (i % 2 === 1) {
      for (let k = 0; k < 1 + rnd() * 4; k++) bytes[Math.floor(rnd() * bytes.length)] = rnd() * 256;
    }
    wire = latin1String(bytes);
    let pos = 0;
    while (pos < bytes.length && !m.closed()) {
      const n = 1 + Math.floor(rnd() * 40);
      m.events().data(bytes.slice(pos, pos + n));
      pos += n;
      if (rnd() < 0.3) await Promise.resolve();
    }
    await sleep(0);
    if (rnd() < 0.5) m.events().end();
    else m.carrier.destroy();
    conn.closeIdle();
    for (const s of m.out) assert(!s.includes("undefined"), s);
  }
  assert(requests > 500, `only ${requests} requests reached the handler`);
});
