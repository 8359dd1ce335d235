/**
 * The reference rows, measured in the same run as HopGate's and against the same origin: a one-hop
 * Deno reverse proxy (scripts/bench/deno_proxy.ts) and `ssh -R` over loopback (scripts/bench/ssh_tunnel.ts).
 * Each gets the small-request load with every process of the row under a CPU meter, then the big
 * download and upload; its processes are stopped before the next row starts.
 */
import { cpuMeter, type CpuUse, processTree } from "./cpu.ts";
import { curlDownload, curlUpload, type SmallResult, type TransferResult, warmUp, wrk } from "./measure.ts";
import { Proc } from "./proc.ts";
import { sshUnavailable, startSshTunnel, stopSshTunnel } from "./ssh_tunnel.ts";

export type RefName = "denoProxy" | "sshR";

export interface RefRow {
  /** Why the row was not measured (a missing tool, a start that failed). */
  skipped?: string;
  small?: SmallResult;
  download?: TransferResult;
  upload?: TransferResult;
}

/** Per row (direct, hopHttp, hopHttps, denoProxy, sshR): each process group's CPU during the small-request load. */
export type CpuRows = Record<string, Record<string, CpuUse>>;

export interface RefsContext {
  config: {
    loadSeconds: number;
    /** Discarded load before the measured run (warmUp in measure.ts). */
    warmupSeconds: number;
    connections: number;
    wrkThreads: number;
    transferBytes: number;
    transferMaxS: number;
  };
  originPid: number;
  originPort: number;
  /** A temp dir of the run (keys and configs go below it) and the directory for process logs. */
  work: string;
  logDir: string;
  /** The upload file (transferBytes long). */
  upload: string;
  refs: Partial<Record<RefName, RefRow>>;
  cpu: CpuRows;
  /** Runs one phase; a failure is recorded and the run goes on. */
  phase: <T>(name: string, fn: () => Promise<T>) => Promise<T | undefined>;
  say: (line: string) => void;
}

/** Small requests at `url`, after the discarded warm-up, with the groups' CPU metered over the measured run. */
export async function smallWithCpu(
  ctx: Pick<RefsContext, "config">,
  url: string,
  groups: Record<string, number[]>,
  host?: string,
): Promise<{ small: SmallResult & { raw: string }; cpu: Record<string, CpuUse> }> {
  const c = ctx.config;
  await warmUp(url, { seconds: c.warmupSeconds, connections: c.connections, threads: c.wrkThreads, host });
  const meter = await cpuMeter(groups);
  const small = await wrk(url, {
    seconds: c.loadSeconds,
    connections: c.connections,
    threads: c.wrkThreads,
    host,
  });
  return { small, cpu: meter(small.requests) };
}

/** One-line summary of a row's CPU figures for the progress output. */
export function fmtCpu(cpu: Record<string, CpuUse>): string {
  return Object.entries(cpu).map(([name, u]) => `${name} ${u.usPerRequest.toFixed(0)} µs/req`).join(", ");
}

async function measureRow(
  ctx: RefsContext,
  name: RefName,
  label: string,
  base: string,
  groups: Record<string, number[]>,
): Promise<void> {
  const row = (ctx.refs[name] ??= {});
  const c = ctx.config;
  await ctx.phase(`${label} small requests`, async () => {
    const r = await smallWithCpu(ctx, `${base}/small`, groups);
    row.small = r.small;
    ctx.cpu[name] = r.cpu;
    ctx.say(
      `${label} small requests: ${r.small.rps.toFixed(0)} req/s, p99 ${r.small.p99Ms.toFixed(2)} ms; ${
        fmtCpu(r.cpu)
      }`,
    );
  });
  await ctx.phase(`${label} download`, async () => {
    row.download = await curlDownload({ url: base, maxTimeS: c.transferMaxS }, c.transferBytes);
    ctx.say(`${label} download: ${row.download.mbPerS.toFixed(1)} MB/s`);
  });
  await ctx.phase(`${label} upload`, async () => {
    row.upload = await curlUpload({ url: base, maxTimeS: c.transferMaxS }, ctx.upload, c.transferBytes);
    ctx.say(`${label} upload: ${row.upload.mbPerS.toFixed(1)} MB/s`);
  });
}

async function denoProxy(ctx: RefsContext): Promise<void> {
  const proc = new Proc(
    "ref-deno-proxy",
    [
      Deno.execPath(),
      "run",
      "-A",
      new URL("./deno_proxy.ts", import.meta.url).pathname,
      String(ctx.originPort),
    ],
    `${ctx.logDir}/ref-deno-proxy.log`,
  );
  try {
    const ready = await proc.waitJson((o) => o.proxy === "ready", 30_000, "Deno proxy ready line");
    const base = `http://127.0.0.1:${ready.port}`;
    ctx.say(`Deno proxy on ${base}`);
    await measureRow(ctx, "denoProxy", "Deno proxy", base, {
      proxy: processTree(proc.pid),
      origin: [ctx.originPid],
    });
  } finally {
    await proc.stop(3000);
  }
}

async function sshR(ctx: RefsContext): Promise<void> {
  const missing = await sshUnavailable();
  if (missing) {
    ctx.refs.sshR = { skipped: missing };
    ctx.say(`ssh -R row skipped: ${missing}`);
    return;
  }
  const tunnel = await startSshTunnel({
    dir: `${ctx.work}/ssh`,
    logDir: ctx.logDir,
    originPort: ctx.originPort,
  });
  try {
    ctx.say(`ssh -R: sshd on 127.0.0.1:${tunnel.sshdPort}, forward on 127.0.0.1:${tunnel.port}`);
    await measureRow(ctx, "sshR", "ssh -R", `http://127.0.0.1:${tunnel.port}`, {
      sshd: tunnel.sshdPids,
      ssh: [tunnel.client.pid],
      origin: [ctx.originPid],
    });
  } finally {
    await stopSshTunnel(tunnel);
  }
}

/** Measures both reference rows into ctx.refs and ctx.cpu. */
export async function measureRefs(ctx: RefsContext): Promise<void> {
  await ctx.phase("Deno proxy reference", () => denoProxy(ctx));
  const ok = await ctx.phase("ssh -R reference", async () => {
    await sshR(ctx);
    return true;
  });
  if (!ok && !ctx.refs.sshR?.small) (ctx.refs.sshR ??= {}).skipped ??= "did not start (see problems)";
}
