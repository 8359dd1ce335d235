/**
 * The grpc-js Echo service (tests/support/local_echo.proto) the h2c and tunnel gRPC tests call:
 * Say (unary; "fail" answers INVALID_ARGUMENT) and Count (server-streaming; "fail" stops with
 * RESOURCE_EXHAUSTED after its replies).
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

// deno-lint-ignore no-explicit-any
export type EchoDefinition = any;

/** The Echo service definition (the client constructor, with `.service`). */
export function echoService(): EchoDefinition {
  const definition = protoLoader.loadSync(new URL("./local_echo.proto", import.meta.url).pathname);
  // deno-lint-ignore no-explicit-any
  return (grpc.loadPackageDefinition(definition) as any).hopgate.test.Echo;
}

/** Starts the service on 127.0.0.1 over h2c (no TLS). */
export async function startGrpcEcho(): Promise<{ port: number; url: URL; close(): void }> {
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
      // moment, so the tests check what carries the call, not that race in the service.
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
  return { port, url: new URL(`http://127.0.0.1:${port}`), close: () => server.forceShutdown() };
}
