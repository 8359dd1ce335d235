/** Composition step: the data directory, the database, the server secret and the domain store. */
import type { ServerConfig } from "../config/server_config.ts";
import type { Logger } from "../log/logger.ts";
import { type Database, openDatabase } from "../../db/open.ts";
import { createDomainStore, type DomainInfo, type DomainStore } from "../../db/domains.ts";
import { restrictUmask, secureTree } from "../../db/data_dir.ts";
import { createKeySealer } from "../../db/key_seal.ts";
import { loadServerSecret } from "../../db/secret.ts";

/** What the later steps read from storage. */
export interface Storage {
  database: Database;
  store: DomainStore;
  /** The server secret: seals client keys at rest, keys the peer-forwarding marker. */
  secret: Uint8Array;
  /** The domains stored at start-up (the lifecycle's initial stamps). */
  listed: DomainInfo[];
  /** The domains this server serves, kept current by the domain lifecycle. */
  domains: Set<string>;
}

/** Secures the data directory, opens the database and the domain store (client keys sealed). */
export async function openStorage(config: ServerConfig, logger: Logger): Promise<Storage> {
  const log = logger.child({ component: "server" });
  // Owner-only from here on (the embedded database, TLS keys, the secret), and existing files fixed.
  restrictUmask();
  await secureTree(config.dataDir);
  const database = await openDatabase({ dsn: config.dbDsn, dataDir: config.dataDir, logger });
  let store: DomainStore;
  let secret: Uint8Array;
  try {
    secret = await loadServerSecret({
      secretKeyHex: config.secretKey,
      dataDir: config.dataDir,
      dsn: config.dbDsn,
    });
    store = createDomainStore(database.db, createKeySealer(secret));
    const sealed = await store.sealLegacyKeys();
    if (sealed > 0) log.info({ sealed }, "client keys sealed at rest");
  } catch (e) {
    await database.close().catch(() => {});
    throw e;
  }
  const listed = await store.list();
  return { database, store, secret, listed, domains: new Set(listed.map((d) => d.domain)) };
}
