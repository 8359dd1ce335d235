// An h2c service run by the `node` binary (Deno's own http2 server cannot send a head this big):
// answers every request with N Set-Cookie lines of 1 300 bytes. Prints its port, exits when stdin closes.
//   node tests/support/local_h2_cookies.cjs N
const http2 = require("node:http2");
const count = Number(process.argv[2]);
const cookies = Array.from({ length: count }, (_, i) => `c${i}=${"v".repeat(1300)}`);
const server = http2.createServer({ maxSendHeaderBlockLength: 1 << 20 });
server.on("stream", (stream) => {
  stream.on("error", () => {});
  stream.respond({ ":status": 200, "set-cookie": cookies });
  stream.end("ok");
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
