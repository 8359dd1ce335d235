/**
 * Certificates by host name for the HTTPS front's SNI callback. Self-signed mode issues from the
 * local CA on first use and keeps them in the data directory; an unknown name gets the server's own.
 */
import tls from "node:tls";
import { type DevCa, issueHostCertificate, loadOrCreateCa, type PemPair } from "./self_signed.ts";

export interface CertificateStore {
  /** The secure context for a host name (SNI); the server's own for names it does not serve. */
  contextFor(servername: string | undefined): Promise<tls.SecureContext>;
  /** The server domain's certificate, for handshakes without SNI. */
  defaultPair(): PemPair;
  /** PEM of the CA clients should trust in self-signed mode. */
  readonly caPem: string;
  /** Forgets a host's certificate (the domain was removed). */
  forget(hostname: string): Promise<void>;
}

export interface StoreOptions {
  dir: string;
  serverDomain: string;
  /** Whether a host name is one the server serves (a registered domain). */
  isServedHost(hostname: string): boolean;
}

/** Opens the self-signed store: loads the CA and the server domain's certificate, creating them if needed. */
export async function openSelfSignedStore(options: StoreOptions): Promise<CertificateStore> {
  const ca = await loadOrCreateCa(options.dir);
  const hostsDir = `${options.dir}/hosts`;
  await Deno.mkdir(hostsDir, { recursive: true });
  const contexts = new Map<string, Promise<{ pair: PemPair; context: tls.SecureContext }>>();

  // The server's own certificate also names loopback, so the admin API can be reached at
  // https://localhost on a development machine with the CA trusted.
  const extraFor = (hostname: string) =>
    hostname === options.serverDomain ? ["localhost", "127.0.0.1", "::1"] : [];
  const load = (hostname: string) => {
    let entry = contexts.get(hostname);
    if (!entry) {
      entry = loadOrIssue(ca, hostsDir, hostname, extraFor(hostname)).then((pair) => ({
        pair,
        context: tls.createSecureContext(pair),
      }));
      entry.catch(() => contexts.delete(hostname));
      contexts.set(hostname, entry);
    }
    return entry;
  };
  const own = await load(options.serverDomain);

  return {
    caPem: ca.certPem,
    defaultPair: () => own.pair,
    async contextFor(servername) {
      const name = servername?.toLowerCase().replace(/\.$/, "");
      if (!name || name === options.serverDomain || !options.isServedHost(name)) return own.context;
      return (await load(name)).context;
    },
    async forget(hostname) {
      contexts.delete(hostname);
      for (const ext of ["crt", "key"]) await Deno.remove(`${hostsDir}/${hostname}.${ext}`).catch(() => {});
    },
  };
}

async function loadOrIssue(ca: DevCa, dir: string, hostname: string, extraNames: string[]): Promise<PemPair> {
  const certFile = `${dir}/${hostname}.crt`;
  const keyFile = `${dir}/${hostname}.key`;
  try {
    return { cert: await Deno.readTextFile(certFile), key: await Deno.readTextFile(keyFile) };
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const pair = await issueHostCertificate(ca, hostname, extraNames);
  await Deno.writeTextFile(keyFile, pair.key, { mode: 0o600 });
  await Deno.writeTextFile(certFile, pair.cert);
  return pair;
}
