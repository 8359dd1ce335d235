/**
 * Orders one certificate per host name from an ACME CA (RFC 8555) with npm:acme-client, proving
 * control with HTTP-01. The account key is made once and kept in the database.
 */
import https from "node:https";
import * as acme from "acme-client";
import * as x509 from "@peculiar/x509";
import type { Logger } from "../log/logger.ts";
import type { Http01Challenges } from "./http01.ts";

export interface IssuedCertificate {
  /** Leaf first, then the intermediates. */
  certPem: string;
  keyPem: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

export interface AccountStore {
  /** The account's key for this directory, created on first use. */
  key(createKey: () => Promise<string>): Promise<string>;
  /** Records the account URL the directory returned. */
  saveUrl(url: string): Promise<void>;
}

export interface AcmeIssuerOptions {
  directoryUrl: string;
  email?: string;
  /** Extra CA (PEM) to trust for the directory's own HTTPS, for private ACME servers. */
  caPem?: string;
  account: AccountStore;
  challenges: Http01Challenges;
  logger: Logger;
}

export interface AcmeIssuer {
  issue(hostname: string): Promise<IssuedCertificate>;
}

/** Reads serial and validity from the leaf of a PEM chain. */
export function certificateFacts(chainPem: string): { serial: string; notBefore: Date; notAfter: Date } {
  const leaf = new x509.X509Certificate(x509.PemConverter.decodeFirst(chainPem));
  return { serial: leaf.serialNumber.toLowerCase(), notBefore: leaf.notBefore, notAfter: leaf.notAfter };
}

/** Creates an issuer; the account is registered (or found again by its key) on the first order. */
export function createAcmeIssuer(options: AcmeIssuerOptions): AcmeIssuer {
  const log = options.logger.child({ component: "acme" });
  // acme-client talks through one module-wide axios instance; a private CA is trusted there.
  acme.axios.defaults.timeout = 30_000;
  if (options.caPem) {
    acme.axios.defaults.httpsAgent = new https.Agent({ ca: options.caPem, keepAlive: true });
  }
  let client: Promise<acme.Client> | undefined;
  const connect = async () => {
    const keyPem = await options.account.key(async () =>
      (await acme.crypto.createPrivateEcdsaKey()).toString()
    );
    const c = new acme.Client({
      directoryUrl: options.directoryUrl,
      accountKey: keyPem,
      backoffMin: 250,
      backoffMax: 10_000,
      backoffAttempts: 12,
    });
    await c.createAccount({
      termsOfServiceAgreed: true,
      ...(options.email ? { contact: [`mailto:${options.email}`] } : {}),
    });
    const url = c.getAccountUrl();
    await options.account.saveUrl(url);
    log.info({ directory: options.directoryUrl, account: url }, "acme account ready");
    return c;
  };
  const getClient = () => {
    client ??= connect();
    client.catch(() => (client = undefined));
    return client;
  };

  return {
    async issue(hostname) {
      const started = performance.now();
      const c = await getClient();
      const order = await c.createOrder({ identifiers: [{ type: "dns", value: hostname }] });
      log.info({ domain: hostname, order: order.url }, "acme order created");
      const tokens: string[] = [];
      try {
        for (const authz of await c.getAuthorizations(order)) {
          if (authz.status === "valid") continue;
          const challenge = authz.challenges.find((ch) => ch.type === "http-01");
          if (!challenge) throw new Error(`the CA offered no http-01 challenge for ${hostname}`);
          tokens.push(challenge.token);
          await options.challenges.set(challenge.token, await c.getChallengeKeyAuthorization(challenge));
          await c.completeChallenge(challenge);
          await c.waitForValidStatus(challenge);
        }
        const [key, csr] = await acme.crypto.createCsr(
          { commonName: hostname, altNames: [hostname] },
          await acme.crypto.createPrivateEcdsaKey(),
        );
        const finalized = await c.finalizeOrder(order, csr);
        const certPem = await c.getCertificate(finalized);
        const facts = certificateFacts(certPem);
        log.info({
          domain: hostname,
          serial: facts.serial,
          not_after: facts.notAfter.toISOString(),
          duration_ms: Math.round(performance.now() - started),
        }, "acme order completed");
        return { certPem, keyPem: key.toString(), ...facts };
      } finally {
        for (const t of tokens) await options.challenges.delete(t).catch(() => {});
      }
    },
  };
}
