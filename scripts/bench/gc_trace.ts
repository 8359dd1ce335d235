/**
 * Reads V8's `--trace-gc-nvp` lines (one JSON object per collection after "GC: ") from a process's log
 * and sums up the young-generation collections: how many, their pauses, and how much of the young
 * generation survived each (what survives is copied, so it sets the pause).
 */
import { percentile } from "./measure.ts";

export interface GcSummary {
  scavenges: number;
  fullCollections: number;
  pauseP50Ms: number;
  pauseP99Ms: number;
  pauseMaxMs: number;
  /** Mean kB that survived a scavenge (copied within the young generation or promoted). */
  survivedKb: number;
  /** Mean kB promoted to the old generation per scavenge. */
  promotedKb: number;
  /** All collections' pauses added up. */
  totalPauseMs: number;
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Undefined when the text has no scavenge in it (the flag was not given, or the process idled). */
export function summarizeGcTrace(text: string): GcSummary | undefined {
  const rows: Record<string, unknown>[] = [];
  for (const line of text.split("\n")) {
    const at = line.indexOf("GC: {");
    if (at === -1) continue;
    try {
      rows.push(JSON.parse(line.slice(at + 4)));
    } catch { /* a line interleaved with other output */ }
  }
  const scavenges = rows.filter((r) => r.gc === "s");
  if (scavenges.length === 0) return undefined;
  const pauses = scavenges.map((r) => Number(r.pause)).sort((a, b) => a - b);
  const mean = (key: string) => scavenges.reduce((sum, r) => sum + Number(r[key] ?? 0), 0) / scavenges.length;
  return {
    scavenges: scavenges.length,
    fullCollections: rows.length - scavenges.length,
    pauseP50Ms: round(percentile(pauses, 50)),
    pauseP99Ms: round(percentile(pauses, 99)),
    pauseMaxMs: round(pauses[pauses.length - 1]),
    survivedKb: Math.round(mean("new_space_survived") / 1024),
    promotedKb: Math.round(mean("promoted") / 1024),
    totalPauseMs: Math.round(rows.reduce((sum, r) => sum + Number(r.pause ?? 0), 0)),
  };
}

export function fmtGc(g: GcSummary | undefined): string {
  if (g === undefined) return "no scavenge traced";
  return `${g.scavenges} scavenges, pause p50 ${g.pauseP50Ms} ms p99 ${g.pauseP99Ms} ms max ${g.pauseMaxMs} ms, ` +
    `${g.survivedKb} kB survived and ${g.promotedKb} kB promoted per scavenge, ` +
    `${g.fullCollections} full, ${g.totalPauseMs} ms paused in all`;
}
