/**
 * Where test data directories go: tmpfs (/dev/shm) when there is a writable one. An embedded database is
 * ≈ 40 MB; on a disk-backed /tmp its start-up waits on the disk, and the writeback of a finished server's
 * files stalls later tests' file system calls (ext4 journal), which is no part of what the tests measure.
 */

let root: string | null | undefined;

/** The tmpfs directory for test data, or undefined (the system's temporary directory) when there is none. */
export function scratchRoot(): string | undefined {
  if (root === undefined) {
    root = null;
    try {
      const probe = Deno.makeTempDirSync({ dir: "/dev/shm", prefix: "hopgate-probe-" });
      Deno.removeSync(probe);
      root = "/dev/shm";
    } catch { /* no writable tmpfs */ }
  }
  return root ?? undefined;
}

/** A new empty directory under scratchRoot(); the caller removes it. */
export function makeScratchDir(prefix: string): Promise<string> {
  return Deno.makeTempDir({ prefix, dir: scratchRoot() });
}
