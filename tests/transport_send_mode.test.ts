/** The send loop's decision of what may go out now (send_mode.ts), without a connection. */
import { type SendLimits, sendMode } from "../lib/transport/send_mode.ts";
import { assertEquals } from "./support/assert.ts";

function limits(
  { inFlight = 0, cwnd = 12_000, probe = undefined as number | undefined, wait = 0 } = {},
): SendLimits {
  return {
    recovery: { bytesInFlight: inFlight },
    cc: { congestionWindow: cwnd },
    pmtu: { probeSize: () => probe },
    pacer: { timeUntilSend: () => wait },
  };
}

Deno.test("a PTO probe owed goes out whatever the window and the pacer say", () => {
  assertEquals(sendMode(limits({ inFlight: 12_000, wait: 5 }), 0, 1200, 1, true).kind, "pto_probe");
});

Deno.test("a full congestion window allows ACKs and control frames only, and no size probe", () => {
  assertEquals(
    sendMode(limits({ inFlight: 12_000, probe: 16384 }), 0, 1200, 0, true).kind,
    "congestion_limited",
  );
});

Deno.test("a size probe goes before data when the window is open and the probe is larger", () => {
  assertEquals(sendMode(limits({ probe: 16384 }), 0, 1200, 0, true), { kind: "pmtu_probe", size: 16384 });
  assertEquals(sendMode(limits({ probe: 1200 }), 0, 1200, 0, true).kind, "any", "not larger: no probe");
});

Deno.test("stream data waits for the pacer; without stream data the pacer is not asked", () => {
  assertEquals(sendMode(limits({ wait: 0.25 }), 0, 1200, 0, true), { kind: "pacing_limited", waitMs: 0.25 });
  assertEquals(sendMode(limits({ wait: 0.25 }), 0, 1200, 0, false).kind, "no_stream_data");
  assertEquals(sendMode(limits(), 0, 1200, 0, true).kind, "any");
});
