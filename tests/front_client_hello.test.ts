/** The ClientHello server-name reader: real hellos from node:tls, and random bytes never crash it. */
import tls from "node:tls";
import net from "node:net";
import { assertEquals, assertMatch } from "./support/assert.ts";
import { seededRandom } from "../lib/testing/seeded_random.ts";
import { helloRecordLength, serverNameOf } from "../lib/proxy/client_hello.ts";

/** The first bytes a node:tls client sends for a server name. */
async function helloFor(servername: string | undefined): Promise<Uint8Array> {
  const got = Promise.withResolvers<Uint8Array>();
  const server = net.createServer((s) => {
    s.once("data", (d) => {
      got.resolve(new Uint8Array(d));
      s.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const c = tls.connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false });
  c.on("error", () => {});
  const hello = await got.promise;
  c.destroy();
  server.close();
  return hello;
}

Deno.test("client hello: the SNI name of a real ClientHello, none without SNI", async () => {
  const hello = await helloFor("App.Example.test");
  assertEquals(helloRecordLength(hello), hello.length);
  assertEquals(serverNameOf(hello), "app.example.test");
  assertEquals(serverNameOf(await helloFor(undefined)), undefined);
  assertEquals(helloRecordLength(hello.subarray(0, 10)), -1);
  assertEquals(helloRecordLength(new TextEncoder().encode("GET / HTTP/1.1")), 0);
});

Deno.test("fuzz: truncated, mutated and random hellos never throw", async () => {
  const hello = await helloFor("a.test");
  const rnd = seededRandom(5);
  for (let i = 0; i < 20_000; i++) {
    let b: Uint8Array;
    if (i % 3 === 0) b = hello.slice(0, Math.floor(rnd() * hello.length));
    else if (i % 3 === 1) {
      b = hello.slice();
      for (let k = 0; k < 4; k++) b[Math.floor(rnd() * b.length)] = rnd() * 256;
    } else b = Uint8Array.from({ length: Math.floor(rnd() * 300) }, (_, j) => (j === 0 ? 0x16 : rnd() * 256));
    helloRecordLength(b);
    const name = serverNameOf(b);
    if (name !== undefined) assertMatch(name, /^[a-z0-9.\-_]+$/, `bad name ${name}`);
  }
});
