/**
 * The report's reference section: HopGate next to a one-hop Deno proxy and ssh -R from the same run,
 * CPU microseconds per request for every row, and the ratios issue 10 sets targets on.
 */
import { MB, type SmallResult, type TransferResult } from "./measure.ts";
import type { CpuUse } from "./cpu.ts";
import type { Results } from "./results.ts";

/** What the main report lends this section (its table layout and target bookkeeping). */
export interface SectionTools {
  table: (headers: string[], rows: string[][], leftColumns?: number) => string;
  ratios: Record<string, number>;
  /** Records a target; gives "met", "MISSED" or "n/a" (met = null). */
  target: (name: string, figure: string, met: boolean | null) => string;
}

type Row = "direct" | "hopHttp" | "hopHttps" | "denoProxy" | "sshR";
const ROWS: { row: Row; label: string; server: string; client?: string }[] = [
  { row: "direct", label: "direct → origin", server: "" },
  { row: "hopHttp", label: "HopGate HTTP (TLS off)", server: "server", client: "client" },
  { row: "hopHttps", label: "HopGate HTTPS (self-signed)", server: "server", client: "client" },
  { row: "denoProxy", label: "one-hop Deno proxy", server: "proxy" },
  { row: "sshR", label: "ssh -R (OpenSSH)", server: "sshd", client: "ssh" },
];

const fixed = (n: number | undefined, digits = 0) =>
  n === undefined || !Number.isFinite(n) ? "—" : n.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || !(b > 0) ? NaN : a / b;
const times = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}×` : "n/a");
const us = (u: CpuUse | undefined) => fixed(u?.usPerRequest);
/** wrk's socket errors (timeouts included) and non-2xx answers. */
const errors = (r: SmallResult) =>
  r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout + r.non2xx;
const mbs = (t: TransferResult | undefined) =>
  t === undefined ? "—" : t.complete ? fixed(t.mbPerS, 1) : `${fixed(t.mbPerS, 1)} (incomplete)`;

function figures(results: Results, row: Row) {
  if (row === "denoProxy" || row === "sshR") {
    const r = results.refs?.[row];
    return { small: r?.small, download: r?.download, upload: r?.upload, skipped: r?.skipped };
  }
  const t = results.transfer[row];
  return { small: results.small[row], download: t?.download, upload: t?.upload, skipped: undefined };
}

/** The section's lines; fills tools.ratios (ref.*) and the targets. */
export function refsSection(results: Results, tools: SectionTools): string[] {
  if (!results.refs) return [];
  const c = results.config;
  const cpu = results.cpu ?? {};
  /** The row's tunnel (or proxy) processes together: server side plus client side. */
  const tunnelUs = (row: Row, a: string, b?: string) =>
    (cpu[row]?.[a]?.usPerRequest ?? NaN) + (b ? cpu[row]?.[b]?.usPerRequest ?? NaN : 0);
  const rows: string[][] = [];
  for (const { row, label, server, client } of ROWS) {
    const f = figures(results, row);
    if (!f.small && !f.download) {
      const hopRow = row === "hopHttp" || row === "hopHttps";
      const why = f.skipped ?? (results.only && hopRow ? `not run (--only=${results.only})` : "failed");
      rows.push([label, why]);
      continue;
    }
    const use = cpu[row] ?? {};
    rows.push([
      label,
      fixed(f.small?.rps),
      fixed(f.small?.p50Ms, 2),
      fixed(f.small?.p99Ms, 2),
      f.small ? fixed(errors(f.small)) : "—",
      mbs(f.download),
      mbs(f.upload),
      server ? `${server} ${us(use[server])}` : "",
      client ? `${client} ${us(use[client])}` : "",
      server ? fixed(tunnelUs(row, server, client)) : "",
      us(use.origin),
    ]);
  }
  const load = `wrk -t${c.wrkThreads ?? 1} -c${c.connections} -d${c.loadSeconds}s, 1 KB`;
  const transfers = c.transferBytes / MB;
  const out = [
    "",
    `HopGate next to the references, same run and origin (${load}; ${transfers} MB transfers; ` +
    "CPU µs per request = utime+stime over the wrk run ÷ requests completed)",
    tools.table(
      [
        "path",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "download MB/s",
        "upload MB/s",
        "server side µs/req",
        "client side µs/req",
        "tunnel µs/req",
        "origin µs/req",
      ],
      rows,
    ),
    "  server side: HopGate server / Deno proxy / sshd (listener and the connection's processes); client side: HopGate",
    "  client / ssh client; tunnel = both sides; origin: the shared origin's own CPU per request, for scale.",
    "  Rows run one after another, none warmed up first. On a busy machine req/s swings far more from run to",
    "  run than CPU µs per request does: read the ratios next to the CPU figures.",
  ];

  const hop = results.small.hopHttp;
  const deno = results.refs.denoProxy?.small;
  const ssh = results.refs.sshR?.small;
  const vsDeno = ratio(hop?.rps, deno?.rps);
  const vsSsh = ratio(hop?.rps, ssh?.rps);
  tools.ratios["ref.hopHttp_vs_denoProxy.rps"] = vsDeno;
  tools.ratios["ref.hopHttp_vs_sshR.rps"] = vsSsh;
  tools.ratios["ref.denoProxy_vs_sshR.rps"] = ratio(deno?.rps, ssh?.rps);
  out.push(
    `  HopGate HTTP ÷ Deno proxy: ${times(vsDeno)} req/s [≥ 0.55×: ${
      tools.target(
        "HopGate HTTP ≥ 0.55× the one-hop Deno proxy's req/s (same run)",
        times(vsDeno),
        Number.isFinite(vsDeno) ? vsDeno >= 0.55 : null,
      )
    }]; HopGate HTTP ÷ ssh -R: ${times(vsSsh)} req/s (beyond: ≥ 1×); Deno proxy ÷ ssh -R: ${
      times(ratio(deno?.rps, ssh?.rps))
    }`,
    `  HopGate HTTP p99: ${fixed(hop?.p99Ms, 2)} ms [≤ 10 ms: ${
      tools.target("HopGate HTTP p99 ≤ 10 ms", `${fixed(hop?.p99Ms, 2)} ms`, hop ? hop.p99Ms <= 10 : null)
    }] (Deno proxy ${fixed(deno?.p99Ms, 2)} ms, ssh -R ${fixed(ssh?.p99Ms, 2)} ms)`,
  );
  const hd = results.transfer.hopHttp?.download;
  const sd = results.refs.sshR?.download;
  const downOk = hd ? hd.complete && hd.mbPerS >= 100 : null;
  tools.ratios["ref.hopHttp_vs_sshR.download"] = ratio(hd?.complete ? hd.mbPerS : undefined, sd?.mbPerS);
  out.push(
    `  ${c.transferBytes / MB} MB download: HopGate HTTP ${mbs(hd)} MB/s [≥ 100 MB/s: ${
      tools.target("HopGate HTTP big download ≥ 100 MB/s", `${mbs(hd)} MB/s`, downOk)
    }], ssh -R ${mbs(sd)} MB/s (HopGate ÷ ssh -R ${
      times(tools.ratios["ref.hopHttp_vs_sshR.download"])
    }), Deno proxy ${mbs(results.refs.denoProxy?.download)} MB/s`,
  );
  const hopUs = tunnelUs("hopHttp", "server", "client");
  const denoUs = tunnelUs("denoProxy", "proxy");
  const sshUs = tunnelUs("sshR", "sshd", "ssh");
  tools.ratios["ref.hopHttp_vs_denoProxy.cpu"] = ratio(hopUs, denoUs);
  tools.ratios["ref.hopHttp_vs_sshR.cpu"] = ratio(hopUs, sshUs);
  out.push(
    `  CPU per request: HopGate HTTP (server + client) ${fixed(hopUs)} µs, Deno proxy ${
      fixed(denoUs)
    } µs, ssh -R (sshd + ssh) ${fixed(sshUs)} µs: HopGate ÷ Deno proxy ${
      times(ratio(hopUs, denoUs))
    }, ÷ ssh -R ${times(ratio(hopUs, sshUs))}`,
  );
  return out;
}
