/**
 * A private PostgreSQL cluster from Debian's `postgresql` binaries: created in a temporary folder,
 * started on a free loopback port, stopped and removed afterwards. Used by the tests and by hand:
 *   deno run -A scripts/postgres.ts     (prints the DSN, stops on Ctrl-C)
 */

export interface PostgresCluster {
  dsn: string;
  port: number;
  dir: string;
  /** Stops the server abruptly, keeping its data (a database outage, for tests). */
  halt(): Promise<void>;
  /** Starts a halted server again on the same port. */
  resume(): Promise<void>;
  /**
   * While halted: runs SQL with the server reachable only through its Unix socket, so that no
   * TCP client (no HopGate server) can see the change happen; halted again afterwards.
   */
  writeWhileHalted(statements: string): Promise<void>;
  stop(): Promise<void>;
}

/** The newest /usr/lib/postgresql/N/bin, or an error naming the package to install. */
export function postgresBinDir(): string {
  const root = "/usr/lib/postgresql";
  let versions: number[] = [];
  try {
    versions = [...Deno.readDirSync(root)].map((e) => Number(e.name)).filter((n) => Number.isFinite(n));
  } catch { /* reported below */ }
  for (const v of versions.sort((a, b) => b - a)) {
    const bin = `${root}/${v}/bin`;
    try {
      Deno.statSync(`${bin}/initdb`);
      return bin;
    } catch { /* try the next */ }
  }
  throw new Error("PostgreSQL server binaries not found: apt-get install postgresql");
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

const isRoot = Deno.uid?.() === 0;

async function run(cmd: string, args: string[], user?: string): Promise<string> {
  const [program, argv] = isRoot && user ? ["runuser", ["-u", user, "--", cmd, ...args]] : [cmd, args];
  const out = await new Deno.Command(program, { args: argv, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed:\n${text}`);
  return text;
}

/**
 * Creates and starts a throwaway cluster with a `hopgate` database, in a new directory under `parent`
 * (default: the system's temporary directory; the tests pass a tmpfs).
 */
export async function startPostgres(
  options: { parent?: string; maxConnections?: number } = {},
): Promise<PostgresCluster> {
  const bin = postgresBinDir();
  const dir = await Deno.makeTempDir({ prefix: "hopgate-pg-", dir: options.parent });
  // initdb refuses to run as root; the cluster belongs to the postgres system user then.
  const owner = isRoot ? "postgres" : undefined;
  if (owner) await run("chown", [owner, dir]);
  const data = `${dir}/data`;
  await run(`${bin}/initdb`, ["-D", data, "-U", "hopgate", "--auth=trust", "-E", "UTF8", "--no-sync"], owner);
  const port = freePort();
  const start = (listen = "127.0.0.1") =>
    run(`${bin}/pg_ctl`, [
      "-D",
      data,
      "-l",
      `${dir}/log`,
      "-w",
      "-t",
      "30",
      "-o",
      `-p ${port} -k ${dir} -c listen_addresses=${listen || "''"} -c fsync=off -c max_connections=${
        options.maxConnections ?? 200
      }`,
      "start",
    ], owner);
  await start();
  await run(`${bin}/createdb`, ["-h", "127.0.0.1", "-p", String(port), "-U", "hopgate", "hopgate"], owner);
  let stopped = false;
  return {
    dsn: `postgres://hopgate@127.0.0.1:${port}/hopgate`,
    port,
    dir,
    async halt() {
      await run(`${bin}/pg_ctl`, ["-D", data, "-m", "immediate", "-w", "stop"], owner);
    },
    async resume() {
      await start();
    },
    async writeWhileHalted(statements: string) {
      await start("");
      try {
        await run(`${bin}/psql`, [
          "-h",
          dir,
          "-p",
          String(port),
          "-U",
          "hopgate",
          "-v",
          "ON_ERROR_STOP=1",
          "-c",
          statements,
          "hopgate",
        ], owner);
      } finally {
        await run(`${bin}/pg_ctl`, ["-D", data, "-m", "fast", "-w", "stop"], owner);
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await run(`${bin}/pg_ctl`, ["-D", data, "-m", "immediate", "-w", "stop"], owner).catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

if (import.meta.main) {
  const pg = await startPostgres();
  console.log(pg.dsn);
  const stop = () => pg.stop().then(() => Deno.exit(0));
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
