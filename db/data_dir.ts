/**
 * The data directory's protection against other local users and other servers: owner-only modes
 * (0700 directories, 0600 files) whatever the umask, and an exclusive lock naming the process that
 * holds it, so two servers never open one embedded database.
 */

/** Every file created from now on is owner-only (PGlite asks for 0666). No-op where umask is unsupported. */
export function restrictUmask(): void {
  try {
    Deno.umask(0o077);
  } catch { /* Windows: no umask; the modes below are best effort there too */ }
}

/** Creates `dir` 0700 and sets every directory under it to 0700 and every file to 0600. */
export async function secureTree(dir: string): Promise<number> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  return await fixModes(dir, true);
}

async function fixModes(path: string, isDir: boolean): Promise<number> {
  let fixed = 0;
  const info = await Deno.lstat(path);
  const want = isDir ? 0o700 : 0o600;
  if (info.mode !== null && (info.mode & 0o777) !== want) {
    try {
      await Deno.chmod(path, want);
    } catch (e) {
      throw new Error(
        `cannot make ${path} owner-only (${(e as Error).message}): HOP_DATA_DIR and everything in it must ` +
          `belong to the user running hopgate-server`,
      );
    }
    fixed++;
  }
  if (!isDir) return fixed;
  for await (const entry of Deno.readDir(path)) {
    if (entry.isSymlink) continue; // never follow a link out of the data directory
    fixed += await fixModes(`${path}/${entry.name}`, entry.isDirectory);
  }
  return fixed;
}

export class DataDirInUseError extends Error {
  readonly code = "DATA_DIR_IN_USE";
  constructor(readonly dir: string, readonly pid: number | null) {
    super(
      `HOP_DATA_DIR ${dir} is in use by another hopgate-server (${
        pid !== null ? `pid ${pid}` : "pid unknown"
      }): the embedded database serves one process; stop that server or give this one its own HOP_DATA_DIR ` +
        `(several servers share one PostgreSQL through HOP_DB_DSN instead)`,
    );
    this.name = "DataDirInUseError";
  }
}

export interface DataDirLock {
  readonly path: string;
  release(): void;
}

/**
 * Takes the exclusive OS lock on `dir`/server.lock and writes this process's pid into it. The OS
 * drops the lock when the process dies, even by SIGKILL, so a stale file never blocks a restart.
 */
export async function lockDataDir(dir: string): Promise<DataDirLock> {
  const path = `${dir}/server.lock`;
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  let locked = false;
  try {
    locked = await file.tryLock(true);
  } catch (e) {
    file.close();
    throw e;
  }
  if (!locked) {
    const text = await Deno.readTextFile(path).catch(() => "");
    file.close();
    const pid = Number.parseInt(text.trim(), 10);
    throw new DataDirInUseError(dir, Number.isFinite(pid) ? pid : null);
  }
  await file.truncate(0);
  await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      try {
        file.unlockSync();
      } catch { /* closing unlocks too */ }
      file.close();
    },
  };
}
