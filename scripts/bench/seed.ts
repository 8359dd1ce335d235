/**
 * Registers domains by writing a stopped server's embedded database directly (the benchmark's
 * fallback when the admin API cannot register them). Prints {"domain": "client key", ...}.
 *
 *   deno run -A scripts/bench/seed.ts DATA_DIR DOMAIN...
 */
import { openDatabase } from "../../db/open.ts";
import { createDomainStore } from "../../db/domains.ts";
import { createKeySealer } from "../../db/key_seal.ts";
import { loadServerSecret } from "../../db/secret.ts";

const [dataDir, ...domains] = Deno.args;
if (!dataDir || domains.length === 0) {
  console.error("usage: seed.ts DATA_DIR DOMAIN...");
  Deno.exit(2);
}
const database = await openDatabase({ dataDir });
try {
  // The server's own secret (HOP_SECRET_KEY or DATA_DIR/secret.key), so it can open what is sealed here.
  const secret = await loadServerSecret({ secretKeyHex: Deno.env.get("HOP_SECRET_KEY"), dataDir });
  const store = createDomainStore(database.db, createKeySealer(secret));
  const keys: Record<string, string> = {};
  for (const domain of domains) {
    if (await store.get(domain)) keys[domain] = (await store.rotateKey(domain))!.client_api_key;
    else keys[domain] = (await store.register(domain, "deno task bench (seeded)")).client_api_key;
  }
  console.log(JSON.stringify(keys));
} finally {
  await database.close();
}
