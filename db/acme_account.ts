/**
 * ACME state shared by every server on the database: the account per directory (its key is made once)
 * and the pending HTTP-01 challenges.
 */
import { eq } from "drizzle-orm";
import type { Db } from "./open.ts";
import { acmeAccounts, acmeChallenges } from "./schema.ts";

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

/** Pending HTTP-01 challenges shared by the servers on one database. */
export interface ChallengeTable {
  put(token: string, keyAuthorization: string): Promise<void>;
  get(token: string): Promise<string | null>;
  remove(token: string): Promise<void>;
}

/** The challenges table over a drizzle database. */
export function createChallengeTable(db: Db): ChallengeTable {
  return {
    async put(token, keyAuthorization) {
      await db.insert(acmeChallenges).values({ token, keyAuthorization }).onConflictDoUpdate({
        target: acmeChallenges.token,
        set: { keyAuthorization },
      });
    },
    async get(token) {
      const [row] = await db.select({ k: acmeChallenges.keyAuthorization }).from(acmeChallenges).where(
        eq(acmeChallenges.token, token),
      );
      return row?.k ?? null;
    },
    async remove(token) {
      await db.delete(acmeChallenges).where(eq(acmeChallenges.token, token));
    },
  };
}
