/** The ACME account per directory: its key is made once, kept here, and shared by every server. */
import { eq } from "drizzle-orm";
import type { Db } from "./open.ts";
import { acmeAccounts } from "./schema.ts";

export interface AcmeAccount {
  directoryUrl: string;
  keyPem: string;
  accountUrl: string | null;
}

/**
 * The account for a directory, creating its key with `createKey` on first use. When two servers race,
 * the first insert wins and both use its key.
 */
export async function loadOrCreateAcmeAccount(
  db: Db,
  directoryUrl: string,
  createKey: () => Promise<string>,
): Promise<AcmeAccount> {
  const load = async () => {
    const [row] = await db.select().from(acmeAccounts).where(eq(acmeAccounts.directoryUrl, directoryUrl));
    return row ? { directoryUrl, keyPem: row.keyPem, accountUrl: row.accountUrl } : null;
  };
  const found = await load();
  if (found) return found;
  await db.insert(acmeAccounts).values({ directoryUrl, keyPem: await createKey() }).onConflictDoNothing();
  const created = await load();
  if (!created) throw new Error(`the ACME account for ${directoryUrl} could not be stored`);
  return created;
}

/** Records the account URL the directory gave the key. */
export async function saveAcmeAccountUrl(db: Db, directoryUrl: string, accountUrl: string): Promise<void> {
  await db.update(acmeAccounts).set({ accountUrl }).where(eq(acmeAccounts.directoryUrl, directoryUrl));
}
