/**
 * Aborting a local request on a kept-alive connection: the origin sees it go, once. Deno's node:http
 * re-sends a request whose reused socket closes, so a careless abort either leaves the origin working
 * for nobody or makes it work twice.
 */
import { assertEquals } from "./support/assert.ts";
import { closeLocalConnections, sendLocal } from "../lib/proxy/local_http.ts";
import type { ByteSink } from "../lib/protocol/body.ts";
import { eventually, sleep } from "./support/wait.ts";

const sink: ByteSink = { write: () => true, onDrain() {}, end() {}, abort() {} };

Deno.test("aborting a request on a reused keep-alive connection aborts it at the origin, and only once", async () => {
  let pending = 0;
  let hangs = 0;
  await using origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    if (new URL(req.url).pathname !== "/hang") return new Response("ok");
    pending++;
    hangs++;
    await new Promise<void>((r) => req.signal.addEventListener("abort", () => r()));
    pending--;
    return new Response("late");
  });
  const url = new URL(`http://127.0.0.1:${origin.addr.port}`);
  const send = (target: string) =>
    new Promise<ReturnType<typeof sendLocal>>((resolve) => {
      const x = sendLocal(url, {
        method: "GET",
        target,
        headers: [["Host", "x"]],
        body: null,
        protocol: "h1",
      }, {
        head: () => sink,
        upgraded() {},
        error() {},
      });
      resolve(x);
    });
  try {
    await send("/first");
    await sleep(100);
    const hang = await send("/hang");
    await eventually(() => pending > 0, "the /hang request to reach the origin", 1000, 10);
    assertEquals(pending, 1);
    hang.abort();
    await eventually(() => pending === 0, "the origin's request to be aborted", 1000, 10);
    await sleep(200);
    assertEquals(pending, 0, "the origin's request was aborted");
    assertEquals(hangs, 1, "and not sent again");
  } finally {
    closeLocalConnections();
  }
});
