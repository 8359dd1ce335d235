/**
 * gRPC through the tunnel with real grpc-js at both ends: a grpc-js client over TLS (HTTP/2) to the
 * server's HTTPS front, the tunnel, and a grpc-js service the client reaches over h2c (both as a service
 * declared `h2c://`, and picked by content-type for a plain target). Unary and server-streaming calls,
 * with the status and message carried in trailers, arrive as the service sent them.
 */
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import { assertEquals } from "./support/assert.ts";
import { echoService, startGrpcEcho } from "./support/grpc_echo.ts";
import { type TunnelServer, withTunnel } from "./support/tunnel_env.ts";

const DOMAIN = "grpc.test";

// deno-lint-ignore no-explicit-any
type Echo = any;

function grpcClient(srv: TunnelServer): Echo {
  const Echo = echoService();
  return new Echo(
    `127.0.0.1:${srv.httpsPort}`,
    grpc.credentials.createSsl(Buffer.from(srv.caPem)),
    { "grpc.ssl_target_name_override": DOMAIN, "grpc.default_authority": DOMAIN },
  );
}

function say(client: Echo, text: string): Promise<{ text: string }> {
  return new Promise((resolve, reject) =>
    client.Say({ text }, (e: grpc.ServiceError | null, r: { text: string }) => e ? reject(e) : resolve(r))
  );
}

function count(
  client: Echo,
  text: string,
  n: number,
): Promise<{ replies: string[]; status: grpc.StatusObject }> {
  return new Promise((resolve) => {
    const replies: string[] = [];
    const call = client.Count({ text, count: n });
    call.on("data", (r: { text: string }) => replies.push(r.text));
    call.on("error", () => {});
    call.on("status", (status: grpc.StatusObject) => resolve({ replies, status }));
  });
}

for (const mode of ["a service declared h2c://", "content-type application/grpc on a plain target"]) {
  Deno.test(`gRPC through the tunnel (${mode}): unary and server-streaming, statuses in trailers`, async () => {
    const origin = await startGrpcEcho();
    const target = mode.startsWith("a service")
      ? `h2c://127.0.0.1:${origin.port}`
      : `127.0.0.1:${origin.port}`;
    let client: Echo | undefined;
    try {
      await withTunnel({ domain: DOMAIN, target }, async ({ srv }) => {
        client = grpcClient(srv);
        assertEquals(await say(client, "hello"), { text: "echo: hello" });
        const failed = await say(client, "fail").then(() => null, (e: grpc.ServiceError) => e);
        assertEquals([failed?.code, failed?.details], [
          grpc.status.INVALID_ARGUMENT,
          "text must not be fail",
        ]);
        const ok = await count(client, "n", 3);
        assertEquals(ok.replies, ["n 0", "n 1", "n 2"]);
        assertEquals(ok.status.code, grpc.status.OK);
        const stopped = await count(client, "fail", 2);
        assertEquals(stopped.replies, ["fail 0", "fail 1"]);
        assertEquals([stopped.status.code, stopped.status.details], [
          grpc.status.RESOURCE_EXHAUSTED,
          "stopped after 2 replies",
        ]);
      });
    } finally {
      client?.close();
      origin.close();
    }
  });
}
