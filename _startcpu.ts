import { startTestServer } from "./tests/support/server.ts";
import { startPostgres } from "./scripts/postgres.ts";
const hz = 100;
function cpu(pid: number) { const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" "); return (Number(f[11]) + Number(f[12])) / hz; }
const pg = Deno.args.includes("pg") ? await startPostgres() : undefined;
for (let i = 0; i < 4; i++) {
  const dir = Deno.makeTempDirSync({ dir: "/dev/shm" });
  const t0 = performance.now();
  const s = await startTestServer({ dataDir: dir, dsn: pg?.dsn });
  const t1 = performance.now();
  console.log(`ready ${(t1 - t0).toFixed(0)} ms cpu ${cpu(s.proc.child.pid).toFixed(2)} s startup_ms ${s.ready.startup_ms}`);
  await s.stop();
}
await pg?.stop();
