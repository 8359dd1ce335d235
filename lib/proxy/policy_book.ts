/**
 * Every domain's compiled policy, held in memory so the gateway decides without a database round
 * trip: loaded at start, updated by the store's change callback (changes made on this server) and by
 * `reload` (the cross-server notification, for changes another server made).
 */
import type { PolicyStore, StoredPolicy } from "../../db/policies.ts";
import type { Logger } from "../log/logger.ts";
import { silentLogger } from "../log/logger.ts";
import { type CompiledPolicy, compilePolicy } from "./policy.ts";

export interface PolicyBook {
  /** The domain's policy; undefined when it has none (everything is served). */
  get(domain: string): CompiledPolicy | undefined;
  /** Reads the domain's policy again from the database (after another server changed it). */
  reload(domain: string): Promise<void>;
  /** Stops listening to the store. */
  close(): void;
}

/** Loads every policy and follows the store's changes. */
export async function createPolicyBook(
  store: PolicyStore,
  options: { logger?: Logger; maxBuckets?: number } = {},
): Promise<PolicyBook> {
  const log = (options.logger ?? silentLogger).child({ component: "policy" });
  const book = new Map<string, CompiledPolicy>();
  const set = (domain: string, policy: StoredPolicy | null) => {
    if (!policy) {
      book.delete(domain);
      return;
    }
    try {
      book.set(domain, compilePolicy(policy, { realm: domain, maxBuckets: options.maxBuckets }));
    } catch (e) {
      // The admin API validates every rule, so this is a row written by hand; the old rules stay.
      log.error({ domain, err: (e as Error).message }, "stored policy is invalid; keeping the previous one");
    }
  };
  // Subscribed before the first read, so a change made while loading is not lost.
  const unsubscribe = store.onChange((c) => set(c.domain, c.policy));
  for (const r of await store.all()) if (!book.has(r.domain)) set(r.domain, r.policy);
  log.info({ domains: book.size }, "policies loaded");
  return {
    get: (domain) => book.get(domain),
    async reload(domain) {
      set(domain, (await store.load(domain))?.policy ?? null);
    },
    close: () => unsubscribe(),
  };
}
