import { assert, assertEquals } from "./support/assert.ts";
import { acceptControl, HandshakeRejectedError, openControl } from "../lib/proxy/control.ts";
import { SessionRegistry, type TunnelSession } from "../lib/proxy/registry.ts";
import { prefixCovers } from "../lib/proxy/prefix.ts";
import { connectionPair, type FakeConnection } from "./support/stream_pair.ts";

function session(
  id: string,
  domain: string,
  services = ["/"],
): TunnelSession & { connection: FakeConnection } {
  const [server] = connectionPair();
  return {
    id,
    domain,
    remoteAddress: "203.0.113.1:5000",
    connectedAt: new Date(),
    requestsServed: 0,
    services,
    connection: server,
  };
}

Deno.test("prefixes match at segment boundaries", () => {
  assertEquals(prefixCovers("/", "/anything"), true);
  assertEquals(prefixCovers("/api", "/api"), true);
  assertEquals(prefixCovers("/api", "/api/v1"), true);
  assertEquals(prefixCovers("/api", "/api?x=1"), true);
  assertEquals(prefixCovers("/api", "/apix"), false);
  assertEquals(prefixCovers("/api/", "/api/v1"), true);
});

/** The id of the session route() picks for "/" (round robin), or the result kind when none. */
function pick(r: SessionRegistry, domain: string): string {
  const x = r.route(domain, "/");
  return x.kind === "ok" ? x.session.id : x.kind;
}

Deno.test("route rotates round-robin among a domain's sessions", () => {
  const r = new SessionRegistry();
  r.add(session("a", "demo.example.com"));
  r.add(session("b", "demo.example.com"));
  r.add(session("c", "other.example.com"));
  const picks = [1, 2, 3, 4].map(() => pick(r, "Demo.Example.com"));
  assertEquals(picks, ["a", "b", "a", "b"]);
  assertEquals(pick(r, "nobody.example.com"), "offline");
  assertEquals(r.list("demo.example.com").map((s) => s.id), ["a", "b"]);
});

Deno.test("a session whose connection closes is skipped and removed, with count listeners told", async () => {
  const r = new SessionRegistry();
  const events: [string, number][] = [];
  r.onChange((d, n) => events.push([d, n]));
  const a = session("a", "demo.example.com");
  r.add(a);
  r.add(session("b", "demo.example.com"));
  a.connection.abort(0, "gone");
  await a.connection.closed;
  await Promise.resolve();
  assertEquals([1, 2, 3].map(() => pick(r, "demo.example.com")), ["b", "b", "b"]);
  assertEquals(events, [["demo.example.com", 1], ["demo.example.com", 2], ["demo.example.com", 1]]);
});

Deno.test("route picks by the longest announced prefix: offline, no_service or ok", () => {
  const r = new SessionRegistry();
  assertEquals(r.route("demo.example.com", "/"), { kind: "offline" });
  r.add(session("api", "demo.example.com", ["/api"]));
  assertEquals(r.route("demo.example.com", "/static/x.css"), { kind: "no_service" });
  const ok = r.route("demo.example.com", "/api/users?id=1");
  assertEquals(ok.kind, "ok");
  assertEquals(ok.kind === "ok" && ok.session.id, "api");
  assertEquals(ok.kind === "ok" && ok.prefix, "/api");
});

Deno.test("closeDomain says GOODBYE over the control stream, then closes the sessions", async () => {
  const r = new SessionRegistry();
  const [server, client] = connectionPair();
  const accepted = acceptControl(server, () => ({
    accept: true,
    sessionId: "s1",
    domain: "demo.example.com",
    publicUrl: "https://demo.example.com",
  }));
  const opened = await openControl(client, { clientVersion: "0.1.0", services: ["/"] });
  const result = await accepted;
  assertEquals(result.kind, "accepted");
  assert(result.kind === "accepted");
  assertEquals(result.hello.services, ["/"]);
  assertEquals(opened.welcome.sessionId, "s1");
  r.add({
    id: "s1",
    domain: "demo.example.com",
    remoteAddress: "x",
    connectedAt: new Date(),
    requestsServed: 0,
    services: result.hello.services,
    connection: server,
    control: result.control,
  });
  assertEquals(await r.closeDomain("demo.example.com", "domain deleted"), 1);
  assertEquals(await opened.control.peerGoodbye, "domain deleted");
  assertEquals(server.isClosed, true);
  assertEquals(r.count("demo.example.com"), 0);
});

Deno.test("a REJECT reaches the client as HandshakeRejectedError with the server's code", async () => {
  const [server, client] = connectionPair();
  const accepted = acceptControl(
    server,
    () => ({ accept: false, code: "bad_key", message: "unknown API key" }),
  );
  const err = await openControl(client, { clientVersion: "0.1.0", services: ["/"] }).then(
    () => null,
    (e) => e,
  );
  assert(err instanceof HandshakeRejectedError, String(err));
  assertEquals(err.code, "bad_key");
  assertEquals(await accepted, { kind: "rejected", code: "bad_key", message: "unknown API key" });
});
