/** The shape of bench-results/bench-<timestamp>.json. */
import type { EchoResult, SmallResult, TransferResult } from "./measure.ts";
import type { LogSummary } from "./proc.ts";
import type { CpuRows, RefName, RefRow } from "./refs.ts";
import type { GcSummary } from "./gc_trace.ts";

/** direct = straight to the origin; hopHttp = through HopGate, TLS off (plain HTTP front, Host header);
 * hopHttps = through HopGate, self-signed TLS front (wrk: no SNI, the server's own certificate);
 * hopTcp = as hopHttps, the tunnel on the TCP carrier (TLS over TCP) instead of DTLS over UDP. */
export type PathName = "direct" | "hopHttp" | "hopHttps" | "hopTcp";

export interface SessionsResult {
  requested: number;
  opened: number;
  failed: number;
  errors: unknown;
  openSeconds: number;
  serverSessionsReported: number;
  serverRssBeforeKb: number;
  serverRssAfterKb: number;
  serverKbPerSession: number;
  driverKbPerSession: number;
  serverRssAfterCloseKb?: number;
}

export interface StackMemory {
  /** The first server process, which created the database (before it was restarted on it). */
  freshDbServerKb?: number;
  idleKb?: { server: number; client: number };
  smallLoadPeakKb?: Record<string, number>;
  transferPeakKb?: Record<string, number>;
  afterKb?: { server: number; client: number };
  sessions?: SessionsResult;
}

export interface LossyRow {
  condition: string;
  /** baseline = straight to the origin with the loss on its TCP port (what a TCP tunnel would face). */
  path: "direct" | "hopHttp" | "baseline" | "hopTcp";
  loss: number;
  small?: SmallResult;
  download?: TransferResult;
  iptables?: string;
}

export interface Results {
  timestamp: string;
  config: Record<string, unknown> & {
    mode: string;
    loadSeconds: number;
    connections: number;
    /** wrk threads of every small-request phase (absent in results from before: 1). */
    wrkThreads?: number;
    transferBytes: number;
    sessions: number;
    lossRates: number[];
  };
  env: Record<string, unknown>;
  /** frontOnly: the HTTP stack's own /healthz (front, routing, access log; no tunnel), a reference. */
  small: Partial<Record<PathName | "frontOnly", SmallResult & { raw?: string }>>;
  transfer: Partial<Record<PathName, { download?: TransferResult; upload?: TransferResult }>>;
  ws: Partial<Record<PathName, EchoResult>>;
  memory: Record<string, StackMemory>;
  lossy: { skipped?: string; ports?: Record<string, number>; rows: LossyRow[] };
  /** Phases that failed (the run goes on without them). */
  problems: string[];
  logs: Record<string, LogSummary & { kept?: string }>;
  /** With --profile: the HTTP stack's server and client CPU profiles, summarized. */
  profiles?: Record<string, { file: string; summary: string }>;
  /** With --gc: young-generation collections of the HTTP stack's server and client under load. */
  gc?: Record<string, GcSummary | null>;
  /** Reference rows of the same run: one-hop Deno proxy and ssh -R (scripts/bench/refs.ts). */
  refs?: Partial<Record<RefName, RefRow>>;
  /** CPU time per row during its small-request load, per process group (scripts/bench/cpu.ts). */
  cpu?: CpuRows;
  /** --only=...: the parts that were run (the others are absent, not failed). */
  only?: string;
  /** Each HopGate figure as a ratio to the direct one, and the targets; filled by the report. */
  ratios?: Record<string, number>;
  targets?: { target: string; figure: string; met: boolean | null }[];
}
