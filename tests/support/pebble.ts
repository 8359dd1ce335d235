/**
 * Debian's `pebble` (an RFC 8555 ACME server) and `pebble-challtestsrv` (its mock DNS, answering
 * every name with 127.0.0.1) as processes for end-to-end ACME tests, on free loopback ports.
 * Pebble's own HTTPS uses a certificate from a throwaway CA made here (`caFile` trusts it).
 */
import { freePort } from "./ports.ts";
import { issueHostCertificate, loadOrCreateCa } from "../../lib/tls/self_signed.ts";
import { eventually } from "./wait.ts";

export interface Pebble {
  /** https://127.0.0.1:PORT/dir */
  directoryUrl: string;
  /** PEM file of the CA behind Pebble's own HTTPS (HOP_ACME_CA_FILE). */
  caFile: string;
  /** The root that signs Pebble-issued certificates (GET /roots/0 on the management port). */
  rootPem(): Promise<string>;
  /** Makes the mock DNS answer `host` with these IPv4 addresses (a wrong one fails HTTP-01). */
  setA(host: string, addresses: string[]): Promise<void>;
  /** Lines Pebble printed so far (stdout and stderr). */
  log(): string;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  /** The port Pebble's validator dials for HTTP-01: the HopGate server's plain HTTP listener. */
  httpPort: number;
  dir: string;
}

/** A UDP port that was free a moment ago on 127.0.0.1. */
function freeUdpPort(): number {
  const l = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function spawn(cmd: string, args: string[], env: Record<string, string>, sink: string[]) {
  const child = new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped", stdin: "null" }).spawn();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) sink.push(chunk);
  };
  const done = Promise.all([child.status, pump(child.stdout), pump(child.stderr)]);
  return { child, done };
}

/** Waits until `what` answers (a failed fetch means "not yet"); the failure carries the processes' output. */
async function cameUp(check: () => Promise<boolean>, what: string, sink: string[], timeoutMs = 10_000) {
  await eventually(() => check().catch(() => false), `${what} to come up`, timeoutMs).catch((e) => {
    throw new Error(`${e.message}:\n${sink.join("")}`);
  });
}

/**
 * Starts challtestsrv then Pebble; resolves once Pebble's directory answers. Ports are picked free and
 * bound a moment later, so on a busy machine (tests in parallel) another process can take one first:
 * a failed start is tried once more on fresh ports.
 */
export async function startPebble(options: PebbleOptions): Promise<Pebble> {
  try {
    return await startPebbleOnce(options);
  } catch (e) {
    console.warn(`pebble did not start (${String(e).split("\n")[0]}); once more on fresh ports`);
    return await startPebbleOnce(options);
  }
}

async function startPebbleOnce(options: PebbleOptions): Promise<Pebble> {
  const ca = await loadOrCreateCa(`${options.dir}/pebble-ca`);
  const leaf = await issueHostCertificate(ca, "localhost", ["127.0.0.1"]);
  const certFile = `${options.dir}/pebble-cert.pem`;
  const keyFile = `${options.dir}/pebble-key.pem`;
  const caFile = `${options.dir}/pebble-ca/ca.crt`;
  await Deno.writeTextFile(certFile, leaf.cert);
  await Deno.writeTextFile(keyFile, leaf.key);

  const acmePort = freePort();
  const mgmtPort = freePort();
  const dnsPort = freeUdpPort();
  const challMgmtPort = freePort();
  await Deno.writeTextFile(
    `${options.dir}/pebble.json`,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: certFile,
        privateKey: keyFile,
        httpPort: options.httpPort,
        tlsPort: freePort(),
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
      },
    }),
  );

  const sink: string[] = [];
  // challtestsrv's -dns01 listener is also its mock DNS server; the other challenge servers stay off.
  const chall = spawn(
    "pebble-challtestsrv",
    [
      "-defaultIPv4",
      "127.0.0.1",
      "-defaultIPv6",
      "",
      "-dns01",
      `127.0.0.1:${dnsPort}`,
      "-http01",
      "",
      "-https01",
      "",
      "-tlsalpn01",
      "",
      "-management",
      `127.0.0.1:${challMgmtPort}`,
    ],
    {},
    sink,
  );
  const challUrl = `http://127.0.0.1:${challMgmtPort}`;
  const procs = [chall];
  const stop = async () => {
    for (const p of procs) {
      try {
        p.child.kill("SIGTERM");
      } catch { /* gone */ }
    }
    await Promise.all(procs.map((p) => p.done));
  };
  try {
    await cameUp(
      async () => {
        await (await fetch(challUrl)).body?.cancel();
        return true;
      },
      "pebble-challtestsrv",
      sink,
    );
    const pebble = spawn("pebble", [
      "-config",
      `${options.dir}/pebble.json`,
      "-dnsserver",
      `127.0.0.1:${dnsPort}`,
    ], {
      PEBBLE_VA_NOSLEEP: "1",
      PEBBLE_WFE_NONCEREJECT: "0",
      PEBBLE_AUTHZREUSE: "0",
    }, sink);
    procs.push(pebble);
    const client = Deno.createHttpClient({ caCerts: [ca.certPem] });
    const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
    await cameUp(async () => (await fetch(directoryUrl, { client })).ok, "pebble", sink);
    return {
      directoryUrl,
      caFile,
      async rootPem() {
        const r = await fetch(`https://127.0.0.1:${mgmtPort}/roots/0`, { client });
        if (!r.ok) throw new Error(`pebble /roots/0: ${r.status}`);
        return await r.text();
      },
      async setA(host, addresses) {
        const r = await fetch(`${challUrl}/add-a`, {
          method: "POST",
          body: JSON.stringify({ host: host.endsWith(".") ? host : `${host}.`, addresses }),
        });
        await r.body?.cancel();
        if (!r.ok) throw new Error(`challtestsrv /add-a: ${r.status}`);
      },
      log: () => sink.join(""),
      async stop() {
        client.close();
        await stop();
      },
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
