/**
 * gRPC through the tunnel with real grpc-js at both ends: a grpc-js client over TLS (HTTP/2) to the
 * server's HTTPS front, the tunnel, and a grpc-js service the client reaches over h2c (both as a service
 * declared `h2c://`, and picked by content-type for a plain target). Unary and server-streaming calls,
 * with the status and message carried in trailers, arrive as the service sent them.
 */
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { assertEquals } from "./support/assert.ts";
import {
  startTunnelClient,
  startTunnelServer,
  stopProcess,
  type TunnelServer,
} from "./support/tunnel_env.ts";

const DOMAIN = "grpc.test";
const PROTO = new URL("./support/local_echo.proto", import.meta.url).pathname;

// deno-lint-ignore no-explicit-any
type Echo = any;

function echoService(): Echo {
  const definition = protoLoader.loadSync(PROTO);
  // deno-lint-ignore no-explicit-any
  return (grpc.loadPackageDefinition(definition) as any).hopgate.test.Echo;
}

async function grpcOrigin(): Promise<{ port: number; close(): void }> {
  const server = new grpc.Server();
  server.addService(echoService().service, {
    Say(call: grpc.ServerUnaryCall<{ text: string }, unknown>, done: grpc.sendUnaryData<unknown>) {
      if (call.request.text === "fail") {
        return done({ code: grpc.status.INVALID_ARGUMENT, details: "text must not be fail" });
      }
      done(null, { text: `echo: ${call.request.text}` });
    },
    Count(call: grpc.ServerWritableStream<{ text: string; count: number }, unknown>) {
      for (let i = 0; i < call.request.count; i++) call.write({ text: `${call.request.text} ${i}` });
      // grpc-js may send an error status before writes still queued in its own pipeline: give them a
      // moment, so the test checks the tunnel, not that race in the service.
      if (call.request.text === "fail") {
        setTimeout(
          () =>
            call.emit("error", { code: grpc.status.RESOURCE_EXHAUSTED, details: "stopped after 2 replies" }),
          50,
        );
      } else call.end();
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (e, p) => e ? reject(e) : resolve(p),
    )
  );
  return { port, close: () => server.forceShutdown() };
}

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
    const origin = await grpcOrigin();
    let srv: TunnelServer | undefined;
    let tunnel: Awaited<ReturnType<typeof startTunnelClient>> | undefined;
    let client: Echo | undefined;
    try {
      srv = await startTunnelServer();
      const key = await srv.register(DOMAIN);
      const target = mode.startsWith("a service")
        ? `h2c://127.0.0.1:${origin.port}`
        : `127.0.0.1:${origin.port}`;
      tunnel = await startTunnelClient({ dtls: srv.dtls, domain: DOMAIN, key, target });
      client = grpcClient(srv);
      assertEquals(await say(client, "hello"), { text: "echo: hello" });
      const failed = await say(client, "fail").then(() => null, (e: grpc.ServiceError) => e);
      assertEquals([failed?.code, failed?.details], [grpc.status.INVALID_ARGUMENT, "text must not be fail"]);
      const ok = await count(client, "n", 3);
      assertEquals(ok.replies, ["n 0", "n 1", "n 2"]);
      assertEquals(ok.status.code, grpc.status.OK);
      const stopped = await count(client, "fail", 2);
      assertEquals(stopped.replies, ["fail 0", "fail 1"]);
      assertEquals([stopped.status.code, stopped.status.details], [
        grpc.status.RESOURCE_EXHAUSTED,
        "stopped after 2 replies",
      ]);
    } finally {
      client?.close();
      if (tunnel) await stopProcess(tunnel.proc);
      if (srv) await srv.cleanup();
      origin.close();
    }
  });
}
