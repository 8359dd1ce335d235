// grpc-js under Node.js, for the tunnel's gRPC test: the same Echo service as grpc_echo.ts, and a
// client that makes the test's calls and prints what came back as one JSON line. Run by Node so the
// gRPC client and service are the ones users run (and the Deno test process only orchestrates).
//   node grpc_node.cjs server            → prints {"port":N}, serves until stdin closes
//   node grpc_node.cjs client ADDR CA DOMAIN → prints {"say":…,"failed":…,"ok":…,"stopped":…}
"use strict";
const path = require("node:path");
const fs = require("node:fs");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const Echo =
  grpc.loadPackageDefinition(protoLoader.loadSync(path.join(__dirname, "local_echo.proto"))).hopgate
    .test.Echo;

function server() {
  const s = new grpc.Server();
  s.addService(Echo.service, {
    Say(call, done) {
      if (call.request.text === "fail") {
        return done({ code: grpc.status.INVALID_ARGUMENT, details: "text must not be fail" });
      }
      done(null, { text: `echo: ${call.request.text}` });
    },
    Count(call) {
      for (let i = 0; i < call.request.count; i++) call.write({ text: `${call.request.text} ${i}` });
      // As in grpc_echo.ts: the error status waits for the queued replies.
      if (call.request.text === "fail") {
        setTimeout(
          () =>
            call.emit("error", { code: grpc.status.RESOURCE_EXHAUSTED, details: "stopped after 2 replies" }),
          50,
        );
      } else call.end();
    },
  });
  s.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, port) => {
    if (e) throw e;
    process.stdout.write(JSON.stringify({ port }) + "\n");
  });
  process.stdin.resume();
  process.stdin.on("end", () => {
    s.forceShutdown();
    process.exit(0);
  });
}

function say(client, text) {
  return new Promise((resolve) =>
    client.Say({ text }, (e, r) => resolve(e ? { code: e.code, details: e.details } : { text: r.text }))
  );
}

function count(client, text, n) {
  return new Promise((resolve) => {
    const replies = [];
    const call = client.Count({ text, count: n });
    call.on("data", (r) => replies.push(r.text));
    call.on("error", () => {});
    call.on("status", (s) => resolve({ replies, code: s.code, details: s.details }));
  });
}

async function client(address, caFile, domain) {
  const c = new Echo(address, grpc.credentials.createSsl(fs.readFileSync(caFile)), {
    "grpc.ssl_target_name_override": domain,
    "grpc.default_authority": domain,
  });
  const out = {
    say: await say(c, "hello"),
    failed: await say(c, "fail"),
    ok: await count(c, "n", 3),
    stopped: await count(c, "fail", 2),
  };
  c.close();
  process.stdout.write(JSON.stringify(out) + "\n");
}

const [mode, ...args] = process.argv.slice(2);
if (mode === "server") server();
else if (mode === "client") {
  client(...args).catch((e) => {
    process.stderr.write(String(e && e.stack || e) + "\n");
    process.exit(1);
  });
} else {
  process.stderr.write("usage: grpc_node.cjs server | client ADDR CA DOMAIN\n");
  process.exit(2);
}
