/**
 * The grpc-js Echo service (tests/support/local_echo.proto) the h2c and tunnel gRPC tests call, run
 * by Node.js (grpc_node.cjs): Say (unary; "fail" answers INVALID_ARGUMENT) and Count
 * (server-streaming; "fail" stops with RESOURCE_EXHAUSTED after its replies). Under Node, as users run
 * grpc-js; inside the Deno test process, grpc-js crashed Deno 2.9.6 now and then (a bad free() in a
 * runtime thread).
 */

/** The grpc_node.cjs script (service and client). */
export const GRPC_NODE = new URL("./grpc_node.cjs", import.meta.url).pathname;

/** Starts the service on 127.0.0.1 over h2c (no TLS) in a Node process. */
export async function startGrpcEcho(): Promise<{ port: number; url: URL; close(): Promise<void> }> {
  const child = new Deno.Command("node", { args: [GRPC_NODE, "server"], stdin: "piped", stdout: "piped" })
    .spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the gRPC echo service exited before listening: ${text}`);
    text += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  const { port } = JSON.parse(text.split("\n")[0]) as { port: number };
  return {
    port,
    url: new URL(`http://127.0.0.1:${port}`),
    async close() {
      await child.stdin.close().catch(() => {});
      await child.status;
    },
  };
}
