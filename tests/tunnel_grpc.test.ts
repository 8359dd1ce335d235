/**
 * gRPC through the tunnel with real grpc-js at both ends, run by Node.js as users run it: a grpc-js
 * client over TLS (HTTP/2) to the server's HTTPS front, the tunnel, and a grpc-js service the client
 * reaches over h2c (both as a service declared `h2c://`, and picked by content-type for a plain target).
 * Unary and server-streaming calls, with the status and message carried in trailers, arrive as the
 * service sent them. (grpc-js inside the Deno test process crashed Deno 2.9.6 about once in six runs:
 * a bad free() in a runtime thread; under Node the test checks HopGate, not that.)
 */
import { assertEquals } from "./support/assert.ts";
import { withTunnel } from "./support/tunnel_env.ts";
import { GRPC_NODE, startGrpcEcho } from "./support/grpc_echo.ts";

const DOMAIN = "grpc.test";

// grpc-js status codes (grpc.status): OK 0, INVALID_ARGUMENT 3, RESOURCE_EXHAUSTED 8.
const OK = 0;
const INVALID_ARGUMENT = 3;
const RESOURCE_EXHAUSTED = 8;

interface Calls {
  say: { text?: string; code?: number; details?: string };
  failed: { text?: string; code?: number; details?: string };
  ok: { replies: string[]; code: number; details: string };
  stopped: { replies: string[]; code: number; details: string };
}

async function callThroughTunnel(httpsPort: number, caPem: string): Promise<Calls> {
  const ca = await Deno.makeTempFile({ suffix: ".pem" });
  try {
    await Deno.writeTextFile(ca, caPem);
    const out = await new Deno.Command("node", {
      args: [GRPC_NODE, "client", `127.0.0.1:${httpsPort}`, ca, DOMAIN],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    if (!out.success) throw new Error(`grpc client failed: ${new TextDecoder().decode(out.stderr)}`);
    return JSON.parse(text) as Calls;
  } finally {
    await Deno.remove(ca);
  }
}

for (const mode of ["a service declared h2c://", "content-type application/grpc on a plain target"]) {
  Deno.test(`gRPC through the tunnel (${mode}): unary and server-streaming, statuses in trailers`, async () => {
    const origin = await startGrpcEcho();
    const target = mode.startsWith("a service")
      ? `h2c://127.0.0.1:${origin.port}`
      : `127.0.0.1:${origin.port}`;
    try {
      await withTunnel({ domain: DOMAIN, target }, async ({ srv }) => {
        const calls = await callThroughTunnel(srv.httpsPort, srv.caPem);
        assertEquals(calls.say, { text: "echo: hello" });
        assertEquals(calls.failed, { code: INVALID_ARGUMENT, details: "text must not be fail" });
        assertEquals([calls.ok.replies, calls.ok.code], [["n 0", "n 1", "n 2"], OK]);
        assertEquals(calls.stopped, {
          replies: ["fail 0", "fail 1"],
          code: RESOURCE_EXHAUSTED,
          details: "stopped after 2 replies",
        });
      });
    } finally {
      await origin.close();
    }
  });
}
