/**
 * One PostgreSQL cluster for the test servers of a whole `deno test` run, a database per server.
 *
 * Why: a test server on the embedded PGlite costs ~0.8 s of CPU to start (unpacking the seed, booting
 * PostgreSQL in WebAssembly), one on PostgreSQL ~0.3 s, and a full run starts about seventy. The test files
 * of a run share one process (`deno test --parallel` runs them in threads), so the first file that needs the
 * cluster creates it under a directory named after that process, and the others wait for its DSN there. A
 * watchdog stops the cluster and removes the directory when the test process has exited, however it ended.
 *
 * Each server gets a database named after its data directory: a server restarted on the same directory
 * finds its data, as it would in its embedded database. Tests of the embedded database itself start their
 * servers with `embedded: true`; HOP_TEST_DB=pglite puts every test server on PGlite again.
 */
import { postgresBinDir, startPostgres } from "../../scripts/postgres.ts";
import { scratchRoot } from "./scratch.ts";

/** The run's cluster, as this test file's thread knows it. */
let cluster: Promise<{ host: string; port: number }> | undefined;
const created = new Map<string, Promise<string>>();

/** Whether test servers without their own DSN run on the shared cluster (HOP_TEST_DB, default postgres). */
export function sharedPostgresEnabled(): boolean {
  return (Deno.env.get("HOP_TEST_DB") ?? "postgres") !== "pglite";
}

/** A DSN for the database of `dataDir` on the run's shared cluster, created on first use. */
export function sharedPostgresDsn(dataDir: string): Promise<string> {
  let dsn = created.get(dataDir);
  if (!dsn) {
    dsn = databaseFor(dataDir);
    created.set(dataDir, dsn);
    dsn.catch(() => created.delete(dataDir));
  }
  return dsn;
}

async function databaseFor(dataDir: string): Promise<string> {
  const { host, port } = await (cluster ??= joinCluster());
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(dataDir)));
  const name = "t_" + [...digest.subarray(0, 10)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const out = await new Deno.Command(`${postgresBinDir()}/createdb`, {
    args: ["-h", host, "-p", String(port), "-U", "hopgate", name],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success && !err.includes("already exists")) throw new Error(`createdb ${name} failed: ${err}`);
  return `postgres://hopgate@${host}:${port}/${name}`;
}

const POLL_MS = 50;
const JOIN_TIMEOUT_MS = 60_000;

async function joinCluster(): Promise<{ host: string; port: number }> {
  const dir = `${scratchRoot() ?? Deno.env.get("TMPDIR") ?? "/tmp"}/hopgate-testpg-${Deno.pid}`;
  let owner = true;
  try {
    await Deno.mkdir(dir);
    // The cluster's own directory inside belongs to the postgres user when the tests run as root.
    await Deno.chmod(dir, 0o755);
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    owner = false;
  }
  if (owner) {
    try {
      const pg = await startPostgres({ parent: dir, maxConnections: 1000 });
      await watchdog(dir, pg.dir);
      await Deno.writeTextFile(`${dir}/port.tmp`, String(pg.port));
      await Deno.rename(`${dir}/port.tmp`, `${dir}/port`);
      return { host: "127.0.0.1", port: pg.port };
    } catch (e) {
      await Deno.writeTextFile(`${dir}/error`, (e as Error).message);
      throw e;
    }
  }
  const deadline = Date.now() + JOIN_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const port = await Deno.readTextFile(`${dir}/port`).catch(() => undefined);
    if (port) return { host: "127.0.0.1", port: Number(port) };
    const error = await Deno.readTextFile(`${dir}/error`).catch(() => undefined);
    if (error) throw new Error(`the shared test PostgreSQL did not start: ${error}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  throw new Error(`the shared test PostgreSQL in ${dir} was not ready within ${JOIN_TIMEOUT_MS} ms`);
}

/**
 * A detached shell that waits for this process to exit, then stops the cluster and removes `dir`. It
 * returns at once (the loop runs in the background), so no test holds a child process.
 */
async function watchdog(dir: string, clusterDir: string): Promise<void> {
  const pgCtl = `${postgresBinDir()}/pg_ctl -D ${clusterDir}/data -m immediate -w stop`;
  const stop = Deno.uid?.() === 0 ? `runuser -u postgres -- ${pgCtl}` : pgCtl;
  const script = `while kill -0 ${Deno.pid} 2>/dev/null; do sleep 0.5; done; ${stop}; rm -rf ${dir}`;
  const out = await new Deno.Command("setsid", {
    args: ["-f", "sh", "-c", script],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  if (!out.success) throw new Error("could not start the shared PostgreSQL's watchdog (setsid)");
}
