/**
 * The session mirror and heartbeat against a recording directory: nothing is written before the
 * first heartbeat, then everything once; afterwards only added and ended sessions (coalesced); a
 * failed write is redone in full; a recreated server row (its sessions cascaded away) is refilled.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { connectionPair } from "./support/stream_pair.ts";
import { SessionRegistry } from "../lib/proxy/registry.ts";
import { startClusterPresence } from "../lib/proxy/cluster_presence.ts";
import type { ServerDirectory, SessionRecord } from "../db/servers.ts";
import { silentLogger } from "../lib/log/logger.ts";
import { eventually, sleep } from "./support/wait.ts";

type Row = Omit<SessionRecord, "server_id">;

function recordingDirectory() {
  const calls: string[] = [];
  const rows = new Map<string, Row>();
  let failWrites = false;
  let recreate = true;
  const directory: ServerDirectory = {
    heartbeat() {
      calls.push("heartbeat");
      const created = recreate;
      recreate = false;
      if (created) rows.clear();
      return Promise.resolve(created);
    },
    live: () => Promise.resolve([]),
    reap: () => Promise.resolve(0),
    updateSessions(added, ended) {
      if (failWrites) return Promise.reject(new Error("database unreachable"));
      calls.push(`update +${added.map((r) => r.id).sort().join(",")} -${[...ended].sort().join(",")}`);
      for (const r of added) rows.set(r.id, r);
      for (const id of ended) rows.delete(id);
      return Promise.resolve();
    },
    replaceAllSessions(all) {
      if (failWrites) return Promise.reject(new Error("database unreachable"));
      calls.push(`all ${all.map((r) => r.id).sort().join(",")}`);
      rows.clear();
      for (const r of all) rows.set(r.id, r);
      return Promise.resolve();
    },
    othersSessions: () => Promise.resolve([]),
    leave() {
      calls.push("leave");
      return Promise.resolve();
    },
  };
  return {
    directory,
    calls,
    rows,
    fail: (v: boolean) => failWrites = v,
    dropRow: () => recreate = true,
  };
}

function session(registry: SessionRegistry, id: string, domain: string) {
  const [server] = connectionPair();
  registry.add({
    id,
    domain,
    remoteAddress: "127.0.0.1:1",
    connectedAt: new Date(0),
    requestsServed: 0,
    services: ["/"],
    connection: server,
  });
  return server;
}

Deno.test("cluster presence: full write after the first heartbeat, then deltas; failures and a lost row redo it all", async () => {
  const registry = new SessionRegistry();
  const d = recordingDirectory();
  const a1 = session(registry, "a1", "a.test");
  const presence = startClusterPresence({
    directory: d.directory,
    serverId: "me",
    registry,
    addresses: () => ({ http: "127.0.0.1:80" }),
    version: "test",
    logger: silentLogger,
    heartbeatMs: 300,
  });
  try {
    await eventually(() => d.calls.includes("all a1"), "the first full write", 3000);
    assertEquals(d.calls.slice(0, 2), ["heartbeat", "all a1"]);

    // Three changes in a burst: one delta write, only the difference.
    session(registry, "a2", "a.test");
    session(registry, "b1", "b.test");
    await a1.close(0, "bye");
    await eventually(() => d.calls.some((c) => c.startsWith("update")), "a delta", 3000);
    await sleep(300);
    assertEquals(d.calls.filter((c) => c.startsWith("update")), ["update +a2,b1 -a1"]);
    assertEquals([...d.rows.keys()].sort(), ["a2", "b1"]);
    assertEquals(d.rows.get("b1")?.carrier, "udp");

    // The database goes away for a change: the next heartbeat after it returns rewrites everything.
    d.fail(true);
    session(registry, "c1", "c.test");
    await sleep(500);
    d.fail(false);
    await eventually(() => d.calls.includes("all a2,b1,c1"), "a full rewrite after the failure", 3000);

    // Another server reaped this one's row (a long outage): recreated, and its sessions refilled.
    d.calls.length = 0;
    d.dropRow();
    await eventually(() => d.calls.includes("all a2,b1,c1"), "a refill after the row was recreated", 3000);
    assertEquals(d.rows.size, 3);
  } finally {
    await presence.close();
    await registry.closeAll("test over");
  }
  assert(d.calls.includes("leave"), "a clean stop removes the server's row");
});
