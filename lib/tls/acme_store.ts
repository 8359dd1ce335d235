/**
 * ACME mode's certificate store: the SNI contexts of the certificates kept in the database, and the
 * renewal scheduler that orders missing and expiring ones in the background. A host whose certificate
 * has not arrived yet is answered with the server's own (or, before that one exists, a placeholder
 * from the local CA); a new certificate is used from the next handshake.
 */
import tls from "node:tls";
import type { Db } from "../../db/open.ts";
import { createCertificateTable, type StoredCertificate } from "../../db/certificates.ts";
import { createChallengeTable, loadOrCreateAcmeAccount, saveAcmeAccountUrl } from "../../db/acme_account.ts";
import { type Clock, systemClock, type TimerId } from "../log/clock.ts";
import type { Logger } from "../log/logger.ts";
import type { CertificateStore } from "./certificate_store.ts";
import { issueHostCertificate, loadOrCreateCa, type PemPair } from "./self_signed.ts";
import { type AcmeIssuer, createAcmeIssuer } from "./acme_issuer.ts";
import { createHttp01Challenges } from "./http01.ts";
import { isDue } from "./renewal.ts";
import {
  type CertificateFacts,
  type CertificateState,
  createRenewalScheduler,
  type RenewOutcome,
} from "./renewal_scheduler.ts";

export interface AcmeStoreOptions {
  db: Db;
  serverDomain: string;
  /** Whether a host name is a registered domain. */
  isServedHost(hostname: string): boolean;
  directoryUrl: string;
  email?: string;
  /** Extra CA (PEM) trusted for the directory's HTTPS. */
  caPem?: string;
  /** Directory of the local CA that signs the placeholder certificate. */
  dir: string;
  logger: Logger;
  clock?: Clock;
  now?: () => number;
  /** How often the database is read for certificates other servers ordered; default 10 minutes. */
  refreshMs?: number;
  /** Replaces the ACME client (tests). */
  issuer?: AcmeIssuer;
  /** Called after this server stored a new certificate (other servers are told to load it). */
  onIssued?(hostname: string): void;
}

export interface AcmeCertificateStore extends CertificateStore {
  /** The body for an HTTP-01 challenge request path, or undefined. */
  challengeResponse(pathname: string): Promise<string | undefined>;
  /** Starts ordering what is missing or due: the server's domain and the given domains. */
  start(domains: Iterable<string>): void;
  /** A domain was registered: order its certificate unless one is stored. */
  added(hostname: string): Promise<void>;
  state(hostname: string): CertificateState | null;
  /** Not-after of every certificate held, for the metrics. */
  certificates(): { hostname: string; notAfter: Date }[];
  /** Orders a new certificate for the host now; null if the host is not served. */
  renew(hostname: string): CertificateState | null;
  close(): void;
}

/** Lease on a host's order: longer than an order takes, short enough that a crashed holder frees it. */
const LEASE_MS = 10 * 60_000;

const facts = (c: { serial: string; notBefore: Date; notAfter: Date }): CertificateFacts => ({
  serial: c.serial,
  notBefore: c.notBefore.getTime(),
  notAfter: c.notAfter.getTime(),
});

/** Opens the store: loads the stored certificates; nothing is ordered before `start`. */
export async function openAcmeStore(options: AcmeStoreOptions): Promise<AcmeCertificateStore> {
  const log = options.logger.child({ component: "acme" });
  const table = createCertificateTable(options.db);
  const challenges = createHttp01Challenges(createChallengeTable(options.db));
  const now = options.now ?? (() => Date.now());
  const holder = crypto.randomUUID();
  const issuer = options.issuer ?? createAcmeIssuer({
    directoryUrl: options.directoryUrl,
    email: options.email,
    caPem: options.caPem,
    challenges,
    logger: options.logger,
    account: {
      key: async (createKey) =>
        (await loadOrCreateAcmeAccount(options.db, options.directoryUrl, createKey)).keyPem,
      saveUrl: (url) => saveAcmeAccountUrl(options.db, options.directoryUrl, url),
    },
  });

  const ca = await loadOrCreateCa(options.dir);
  const placeholderPair = await issueHostCertificate(ca, options.serverDomain, ["localhost", "127.0.0.1"]);
  const placeholder = tls.createSecureContext(placeholderPair);
  const contexts = new Map<string, { pair: PemPair; context: tls.SecureContext }>();
  const serves = (h: string) => h === options.serverDomain || options.isServedHost(h);

  const install = (c: StoredCertificate) => {
    const pair = { cert: c.certPem, key: c.keyPem };
    contexts.set(c.hostname, { pair, context: tls.createSecureContext(pair) });
  };
  const stored = new Map<string, StoredCertificate>();
  for (const c of await table.list()) {
    if (!serves(c.hostname)) continue;
    try {
      install(c);
      stored.set(c.hostname, c);
    } catch (e) {
      log.warn({ domain: c.hostname, error: (e as Error).message }, "stored certificate unusable");
    }
  }

  async function renew(hostname: string, forced: boolean): Promise<RenewOutcome> {
    if (!serves(hostname)) return { kind: "gone" };
    if (!(await table.tryLease(hostname, holder, LEASE_MS))) return { kind: "busy" };
    try {
      const current = await table.get(hostname);
      if (current && !forced && !isDue(facts(current), now())) {
        if (contexts.get(hostname)?.pair.cert !== current.certPem) install(current);
        return { kind: "loaded", cert: facts(current) };
      }
      const issued = await issuer.issue(hostname);
      if (!serves(hostname)) return { kind: "gone" };
      const record = { hostname, ...issued };
      await table.save(record);
      install({ ...record, issuedAt: new Date() });
      log.info({
        domain: hostname,
        serial: issued.serial,
        not_after: issued.notAfter.toISOString(),
        renewal: current !== null,
      }, "certificate issued");
      options.onIssued?.(hostname);
      return { kind: "issued", cert: facts(issued) };
    } finally {
      await table.releaseLease(hostname, holder).catch(() => {});
    }
  }

  const clock = options.clock ?? systemClock;
  const scheduler = createRenewalScheduler({ renew, clock, now, logger: options.logger });
  const own = () => contexts.get(options.serverDomain);

  // Servers sharing a database pick up each other's new certificates.
  const refreshMs = options.refreshMs ?? 10 * 60_000;
  let refreshTimer: TimerId | undefined;
  let closed = false;
  const refresh = async () => {
    try {
      for (const c of await table.list()) {
        const held = scheduler.state(c.hostname);
        if (!held || held.serial === c.serial || !serves(c.hostname)) continue;
        install(c);
        scheduler.update(c.hostname, facts(c));
        log.info({ domain: c.hostname, serial: c.serial }, "certificate loaded from the database");
      }
    } catch (e) {
      log.warn({ error: (e as Error).message }, "reading stored certificates failed");
    }
    if (!closed) refreshTimer = clock.setTimeout(refresh, refreshMs * (0.9 + 0.2 * Math.random()));
  };

  return {
    caPem: ca.certPem,
    defaultPair: () => own()?.pair ?? placeholderPair,
    contextFor(servername) {
      const name = servername?.toLowerCase().replace(/\.$/, "");
      const mine = name && serves(name) ? contexts.get(name) : undefined;
      return Promise.resolve(mine?.context ?? own()?.context ?? placeholder);
    },
    async forget(hostname) {
      scheduler.untrack(hostname);
      contexts.delete(hostname);
      await table.remove(hostname);
    },
    challengeResponse: (pathname) => challenges.respond(pathname),
    start(domains) {
      for (const h of [options.serverDomain, ...domains]) {
        const c = stored.get(h);
        scheduler.track(h, c ? facts(c) : undefined);
      }
      stored.clear();
      refreshTimer = clock.setTimeout(refresh, refreshMs);
    },
    async added(hostname) {
      const c = await table.get(hostname);
      if (c) install(c);
      scheduler.track(hostname, c ? facts(c) : undefined);
    },
    state: (hostname) => scheduler.state(hostname),
    certificates: () =>
      scheduler.hosts().flatMap((hostname) => {
        const notAfter = scheduler.state(hostname)?.not_after;
        return notAfter ? [{ hostname, notAfter: new Date(notAfter) }] : [];
      }),
    renew(hostname) {
      if (!serves(hostname)) return null;
      scheduler.force(hostname);
      return scheduler.state(hostname);
    },
    close() {
      closed = true;
      if (refreshTimer !== undefined) clock.clearTimeout(refreshTimer);
      scheduler.close();
    },
  };
}
