/** Composition step: the certificate store, ACME or self-signed by HOP_TLS_MODE (none when TLS is off). */
import type { ServerConfig } from "../config/server_config.ts";
import type { Logger } from "../log/logger.ts";
import type { Database } from "../../db/open.ts";
import { type CertificateStore, openSelfSignedStore } from "../tls/certificate_store.ts";
import type { AcmeCertificateStore } from "../tls/acme_store.ts";

/** The server's certificates; `acme` is the same store as `certs` when it orders them. */
export interface Certificates {
  certs?: CertificateStore;
  acme?: AcmeCertificateStore;
}

export interface CertificateOptions {
  database: Database;
  /** The domains this server serves (certificates are issued for these only). */
  domains: Set<string>;
  /** ACME issued a certificate for a host here (other servers of the cluster reload it). */
  onIssued(hostname: string): void;
  logger: Logger;
}

async function readAcmeCa(file: string): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch (e) {
    throw new Error(`HOP_ACME_CA_FILE ${file} cannot be read: ${(e as Error).message} (give a PEM file)`);
  }
}

/** Opens the certificate store HOP_TLS_MODE asks for; ACME orders start later (`acme.start`). */
export async function openCertificates(config: ServerConfig, o: CertificateOptions): Promise<Certificates> {
  const { domains } = o;
  if (config.tlsMode === "acme") {
    // acme-client (with axios) loads only for ACME: ~0.15 s of CPU at start-up in the other modes.
    const { openAcmeStore } = await import("../tls/acme_store.ts");
    const acme = await openAcmeStore({
      db: o.database.db,
      serverDomain: config.domain,
      isServedHost: (h) => domains.has(h),
      directoryUrl: config.acmeDirectoryUrl,
      email: config.acmeEmail,
      caPem: config.acmeCaFile ? await readAcmeCa(config.acmeCaFile) : undefined,
      dir: `${config.dataDir}/tls`,
      logger: o.logger,
      onIssued: (hostname) => o.onIssued(hostname),
    });
    return { certs: acme, acme };
  }
  if (config.tlsMode === "self-signed") {
    const certs = await openSelfSignedStore({
      dir: `${config.dataDir}/tls`,
      serverDomain: config.domain,
      isServedHost: (h) => domains.has(h),
    });
    return { certs };
  }
  return {};
}
