/**
 * The proxy in one process, without DTLS: the real HTTP front and gateway on 127.0.0.1, a registry
 * holding one session whose connection is a real transport Connection over an in-memory link (loss,
 * delay as asked), and the client's forwarder on the other end, replaying against a local origin.
 * Requests are made with real clients against the front.
 */
import { silentLogger } from "../../lib/log/logger.ts";
import { Connection } from "../../lib/transport/connection.ts";
import { createMemoryLink, type MemoryLinkOptions } from "../../lib/testing/memory_link.ts";
import type { TransportConnection } from "../../lib/transport/types.ts";
import { handleStream, type HandleStreamOptions } from "../../lib/proxy/client_forward.ts";
import type { ServedRequest } from "../../lib/proxy/local_target.ts";
import { closeLocalConnections } from "../../lib/proxy/local_http.ts";
import { SessionRegistry } from "../../lib/proxy/registry.ts";
import { createGateway, type GatewayOptions } from "../../lib/proxy/gateway.ts";
import { type Front, startHttpFront } from "../../lib/proxy/front.ts";

export const PUBLIC_HOST = "demo.example.com";

export interface Harness {
  /** http://127.0.0.1:PORT of the front. */
  base: string;
  front: Front;
  server: TransportConnection;
  client: TransportConnection;
  infos: ServedRequest[];
  /** fetch to the front with Host: demo.example.com. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface HarnessOptions {
  /** The tunnelled domain (default demo.example.com; "127.0.0.1" lets clients that cannot set Host in). */
  domain?: string;
  link?: MemoryLinkOptions;
  client?: Partial<HandleStreamOptions>;
  gateway?: Partial<GatewayOptions>;
}

/** Starts the front, the gateway, a connection pair and the forwarder to `target`. */
export async function startHarness(target: string, o: HarnessOptions = {}): Promise<Harness> {
  const link = createMemoryLink(o.link ?? {});
  const client = new Connection(link.a, { role: "client" });
  const server = new Connection(link.b, { role: "server" });
  const infos: ServedRequest[] = [];
  client.onStream((s) => {
    handleStream(s, {
      services: [{ prefix: "/", target: new URL(target) }],
      hostMode: "rewrite",
      logger: silentLogger,
      onRequest: (i) => infos.push({ ...i }),
      ...o.client,
    });
  });
  const domain = o.domain ?? PUBLIC_HOST;
  const registry = new SessionRegistry();
  registry.add({
    id: "s1",
    domain,
    remoteAddress: "127.0.0.1:1",
    connectedAt: new Date(),
    requestsServed: 0,
    services: ["/"],
    connection: server,
  });
  const gateway = createGateway({
    serverDomain: "hop.example.com",
    ownAddressHosts: false,
    ownApp: () => new Response("own"),
    isRegistered: (d) => d === domain,
    registry,
    proxyTimeoutMs: 5000,
    logger: silentLogger,
    ...o.gateway,
  });
  const front = await startHttpFront({ listen: { hostname: "127.0.0.1", port: 0 }, handler: gateway.handle });
  const base = `http://127.0.0.1:${front.addr.port}`;
  const httpClient = Deno.createHttpClient({ allowHost: true });
  return {
    base,
    front,
    server,
    client,
    infos,
    fetch(path, init = {}) {
      const headers = new Headers(init.headers);
      headers.set("host", domain);
      return fetch(`${base}${path}`, { ...init, headers, client: httpClient } as RequestInit);
    },
    async [Symbol.asyncDispose]() {
      httpClient.close();
      front.destroyConnections();
      await front.close();
      await client.close(0, "test over").catch(() => {});
      server.abort(0, "test over");
      closeLocalConnections();
    },
  };
}
