/**
 * CPU time of the benchmark's processes from /proc: utime + stime of /proc/PID/stat, which sum every
 * thread of the process (live and ended ones). A meter snapshots some named groups of processes
 * before a load phase and gives each group's CPU time spent during it, per completed request.
 */
import { run } from "./proc.ts";

/** The fields of /proc/PID/stat this file needs (times in clock ticks). */
export interface ProcStat {
  pid: number;
  comm: string;
  /** R running, S sleeping, Z ended and not yet reaped by its parent... */
  state: string;
  ppid: number;
  utime: number;
  stime: number;
}

/**
 * Parses one /proc/PID/stat line. The command name (field 2) sits in parentheses and may itself hold
 * spaces and parentheses, so the fields after it are counted from its last ')'.
 */
export function parseProcStat(line: string): ProcStat {
  const open = line.indexOf("(");
  const close = line.lastIndexOf(")");
  if (open < 0 || close < open) {
    throw new Error(`not a /proc/PID/stat line: ${JSON.stringify(line.slice(0, 80))}`);
  }
  // rest[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
  const rest = line.slice(close + 2).trim().split(/\s+/);
  const field = (n: number) => {
    const v = Number(rest[n - 3]);
    if (!Number.isFinite(v)) throw new Error(`/proc/PID/stat field ${n} missing in ${JSON.stringify(line)}`);
    return v;
  };
  return {
    pid: Number(line.slice(0, open).trim()),
    comm: line.slice(open + 1, close),
    state: rest[0],
    ppid: field(4),
    utime: field(14),
    stime: field(15),
  };
}

/** /proc/PID/stat of a live process, or null once it is gone. */
export function procStat(pid: number): ProcStat | null {
  try {
    return parseProcStat(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return null;
  }
}

/** The process and every process below it (children, their children...), as they are now. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const s = procStat(Number(entry.name));
    if (s) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s.pid]);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

let ticksPerSecond: number | undefined;

/** sysconf(_SC_CLK_TCK): the unit of utime and stime (100 on Linux almost everywhere). */
export async function clockTicks(): Promise<number> {
  if (ticksPerSecond === undefined) {
    const r = await run(["getconf", "CLK_TCK"]).catch(() => null);
    const n = Number(r?.stdout.trim());
    ticksPerSecond = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return ticksPerSecond;
}

/** One group's CPU time during a phase. */
export interface CpuUse {
  /** The processes counted (pid: command name). */
  processes: Record<string, string>;
  /** utime + stime over the phase, in seconds; NaN when a process ended during it. */
  cpuSeconds: number;
  /** cpuSeconds × 10^6 ÷ requests completed. */
  usPerRequest: number;
}

/** utime + stime of the pids, in ticks; NaN if any is gone. */
function ticks(pids: number[]): number {
  let sum = 0;
  for (const pid of pids) {
    const s = procStat(pid);
    if (!s) return NaN;
    sum += s.utime + s.stime;
  }
  return sum;
}

/**
 * Snapshots the groups' CPU time now; the returned function takes the requests completed since and
 * gives each group's CPU time and microseconds per request. Groups are lists of pids, fixed here.
 */
export async function cpuMeter(
  groups: Record<string, number[]>,
): Promise<(requests: number) => Record<string, CpuUse>> {
  const hz = await clockTicks();
  const before = Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, ticks(pids)]));
  return (requests) => {
    const out: Record<string, CpuUse> = {};
    for (const [name, pids] of Object.entries(groups)) {
      const cpuSeconds = (ticks(pids) - before[name]) / hz;
      out[name] = {
        processes: Object.fromEntries(pids.map((p) => [String(p), procStat(p)?.comm ?? "gone"])),
        cpuSeconds,
        usPerRequest: requests > 0 ? (cpuSeconds * 1e6) / requests : NaN,
      };
    }
    return out;
  };
}
