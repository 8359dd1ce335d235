/**
 * Summarizes a V8 .cpuprofile (deno run --cpu-prof): the idle share, then (as shares of the busy,
 * non-idle time) GC, the functions with the most self time and the project functions with the most
 * inclusive time.
 *
 *   deno run -A scripts/bench/profile_summary.ts FILE.cpuprofile [top, default 25]
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function shortUrl(url: string): string {
  const m = /\/(lib|scripts|node_modules)\/(.*)$/.exec(url);
  if (m) return `${m[1]}/${m[2]}`;
  if (url.startsWith("ext:")) return url;
  return url ? url.split("/").pop()! : "";
}

function label(f: CallFrame): string {
  const name = f.functionName || "(anonymous)";
  const where = shortUrl(f.url);
  return where ? `${name} ${where}:${f.lineNumber + 1}` : name;
}

export function summarize(profile: Profile, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt);
    total += dt;
  }
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const key = label(node.callFrame);
    self.set(key, (self.get(key) ?? 0) + us);
    // Each function on the stack once (recursion counted once).
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = label(byId.get(cur)!.callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    }
  }
  const idle = self.get("(idle)") ?? 0;
  const busy = total - idle;
  const pct = (us: number) => `${((us / busy) * 100).toFixed(1).padStart(5)}%`;
  const lines: string[] = [];
  const special = ["(idle)", "(program)", "(garbage collector)"];
  lines.push(
    `profile: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (${
      ((idle / total) * 100).toFixed(0)
    }% idle); shares below are of busy time: ` +
      special.slice(1).map((s) => `${s} ${pct(self.get(s) ?? 0).trim()}`).join(", "),
  );
  lines.push(`top ${top} by self time:`);
  for (
    const [k, us] of [...self].filter(([k]) => !special.includes(k)).sort((a, b) => b[1] - a[1]).slice(0, top)
  ) {
    lines.push(`  ${pct(us)}  ${k}`);
  }
  lines.push(`top ${top} project functions (lib/) by inclusive time:`);
  for (
    const [k, us] of [...inclusive].filter(([k]) => / lib\//.test(k)).sort((a, b) => b[1] - a[1]).slice(
      0,
      top,
    )
  ) {
    lines.push(`  ${pct(us)}  ${k}`);
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const [file, top] = Deno.args;
  if (!file) {
    console.error("usage: profile_summary.ts FILE.cpuprofile [top]");
    Deno.exit(2);
  }
  console.log(summarize(JSON.parse(await Deno.readTextFile(file)), Number(top ?? 25)));
}
