/** The printed report: tables, ratios to the direct figures, targets. Fills results.ratios and .targets. */
import { MB, type SmallResult, type TransferResult } from "./measure.ts";
import type { LossyRow, Results } from "./results.ts";
import { refsSection } from "./refs_report.ts";

const PATH_LABEL: Record<string, string> = {
  direct: "direct → origin",
  hopHttp: "HopGate HTTP  (TLS off, Host header)",
  hopHttps: "HopGate HTTPS (self-signed front)",
  hopTcp: "HopGate HTTPS, TCP carrier (TLS tunnel)",
  baseline: "TCP baseline: direct, loss on origin port",
};

function table(headers: string[], rows: string[][], leftColumns = 1): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const cell = (s: string, i: number) => (i < leftColumns ? s.padEnd(widths[i]) : s.padStart(widths[i]));
  const line = (r: string[]) => r.map((s, i) => cell(s ?? "", i)).join("  ").trimEnd();
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

const num = (n: number | undefined, digits = 0) =>
  n === undefined || Number.isNaN(n) ? "—" : n.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
const pct = (
  r: number | undefined,
) => (r === undefined || !Number.isFinite(r) ? "—" : `${(r * 100).toFixed(1)}%`);
const times = (r: number | undefined) =>
  r === undefined || !Number.isFinite(r) ? "—" : `×${r < 1 ? r.toFixed(2) : r.toFixed(1)}`;
const errCount = (r: SmallResult) =>
  r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout + r.non2xx;
const errText = (r: SmallResult) => {
  const parts = [];
  if (r.errors.timeout) parts.push(`${r.errors.timeout} timeout`);
  if (r.errors.connect + r.errors.read + r.errors.write) {
    parts.push(`${r.errors.connect + r.errors.read + r.errors.write} socket`);
  }
  if (r.non2xx) parts.push(`${r.non2xx} non-2xx`);
  return parts.length ? parts.join(", ") : "0";
};
const mbps = (t: TransferResult | undefined) => {
  if (t === undefined) return "—";
  if (t.complete) return num(t.mbPerS, 1);
  if (t.httpCode !== 200) return `failed: HTTP ${t.httpCode || "none"}, curl exit ${t.curlExit}`;
  const why = t.curlExit === 28 ? "" : `, cut: curl exit ${t.curlExit}`;
  return `${num(t.mbPerS, 1)} (partial: ${num(t.bytes / MB, 1)} MB in ${num(t.seconds, 0)} s${why})`;
};
const mb = (
  kb: number | undefined,
) => (kb === undefined || Number.isNaN(kb) ? "—" : `${(kb / 1024).toFixed(1)}`);

export function buildReport(results: Results): string {
  const ratios: Record<string, number> = (results.ratios = {});
  const targets: NonNullable<Results["targets"]> = (results.targets = []);
  const target = (name: string, figure: string, met: boolean | null) => {
    targets.push({ target: name, figure, met });
    return met === null ? "n/a" : met ? "met" : "MISSED";
  };
  const out: string[] = [];
  const c = results.config;
  const e = results.env;
  const threads = c.wrkThreads ?? 1;
  out.push(`HopGate benchmark, ${c.mode} run, ${results.timestamp}`);
  out.push(
    `environment: ${e.cpus} CPUs (${e.cpuModel}), ${e.memTotalMb} MB RAM, ${e.os}; Deno ${e.deno} (V8 ${e.v8}, TypeScript ${e.typescript}); ${e.wrk}; ${
      String(e.curl).split(" ").slice(0, 2).join(" ")
    }; commit ${e.gitCommit}${e.gitDirty ? " + uncommitted changes" : ""}`,
  );
  out.push(
    `load: wrk -t${threads} -c${c.connections} -d${c.loadSeconds}s --latency --timeout 5s, 1 KB responses; transfers ${
      c.transferBytes / MB
    } MB each way by curl (1 MB = 10^6 bytes); WebSocket: ${c.wsRoundTrips} sequential 32-byte echoes`,
  );
  const load = e.loadAverage as Record<string, number> | undefined;
  out.push(
    `all processes on 127.0.0.1: origin, server, client and load generator share the CPUs above; load average ${
      load
        ? `${load.start} at start, ${load.beforeNamespace ?? "?"} before the namespace rows, ${
          load.end ?? "?"
        } at end`
        : "?"
    }`,
  );
  if (load && Math.max(load.start, load.end ?? 0) > Number(e.cpus) * 0.75) {
    out.push(
      `WARNING: the machine was busy with other work (load average above ${
        Number(e.cpus) * 0.75
      }): figures are noisy`,
    );
  }

  // Small requests.
  const d = results.small.direct;
  const smallRows: string[][] = [];
  for (const p of ["direct", "hopHttp", "hopHttps", "hopTcp"] as const) {
    const r = results.small[p];
    if (!r) {
      smallRows.push([PATH_LABEL[p], results.only ? `not run (--only=${results.only})` : "failed"]);
      continue;
    }
    let vs = "—";
    let t = "";
    if (p !== "direct" && d) {
      const ratio = r.rps / d.rps;
      ratios[`small.${p}.rps`] = ratio;
      ratios[`small.${p}.p99`] = r.p99Ms / d.p99Ms;
      vs = `${pct(ratio)} req/s, p99 ${times(r.p99Ms / d.p99Ms)}`;
      t = `≥15% & p99≤10ms: ${
        target(
          `small requests ${p}: ≥ 15% of direct req/s, p99 ≤ 10 ms`,
          `${pct(ratio)}, p99 ${num(r.p99Ms, 2)} ms`,
          ratio >= 0.15 && r.p99Ms <= 10,
        )
      }`;
    }
    smallRows.push([PATH_LABEL[p], num(r.rps), num(r.p50Ms, 2), num(r.p99Ms, 2), errText(r), vs, t]);
  }
  const fo = results.small.frontOnly;
  if (fo) {
    if (d) ratios["small.frontOnly.rps"] = fo.rps / d.rps;
    smallRows.push([
      "(reference) HopGate front only: /healthz",
      num(fo.rps),
      num(fo.p50Ms, 2),
      num(fo.p99Ms, 2),
      errText(fo),
      d ? `${pct(fo.rps / d.rps)} req/s` : "—",
      "no tunnel: the front's ceiling",
    ]);
  }
  out.push(
    "",
    `Small requests (1 KB, ${c.connections} keep-alive connections, ${c.loadSeconds} s)`,
    table(["path", "req/s", "p50 ms", "p99 ms", "errors", "vs direct", "target"], smallRows),
  );
  out.push(
    "  HTTP: wrk → http://127.0.0.1:<http port>/small with Host: bench.test (server in TLS-off mode);",
    "  HTTPS: wrk → https://127.0.0.1:<https port>/small with Host: bench.test (self-signed mode; no SNI name, so the",
    "  server's own certificate; HTTP/1.1). Direct: wrk → http://127.0.0.1:<origin port>/small.",
  );

  // Transfers.
  const dt = results.transfer.direct;
  const transferRows: string[][] = [];
  for (const p of ["direct", "hopHttp", "hopHttps", "hopTcp"] as const) {
    const r = results.transfer[p];
    const version = r?.download?.httpVersion ?? r?.upload?.httpVersion ?? "?";
    let vs = "—";
    let t = "";
    if (p !== "direct" && r) {
      // A failed or cut-short transfer has no meaningful ratio.
      const rd = r.download?.complete && dt?.download ? r.download.mbPerS / dt.download.mbPerS : NaN;
      const ru = r.upload?.complete && dt?.upload ? r.upload.mbPerS / dt.upload.mbPerS : NaN;
      ratios[`transfer.${p}.download`] = rd;
      ratios[`transfer.${p}.upload`] = ru;
      vs = `${pct(rd)} / ${pct(ru)}`;
      const okDown = r.download ? r.download.complete && r.download.mbPerS >= 100 : false;
      const okUp = r.upload ? r.upload.complete && r.upload.mbPerS >= 100 : false;
      t = `≥100 MB/s: ${target(`download ${p} ≥ 100 MB/s`, `${num(r.download?.mbPerS, 1)} MB/s`, okDown)} / ${
        target(`upload ${p} ≥ 100 MB/s`, `${num(r.upload?.mbPerS, 1)} MB/s`, okUp)
      }`;
    }
    transferRows.push([`${PATH_LABEL[p]} [HTTP/${version}]`, mbps(r?.download), mbps(r?.upload), vs, t]);
  }
  out.push(
    "",
    `One ${c.transferBytes / MB} MB download and one ${c.transferBytes / MB} MB upload (curl)`,
    table(["path", "download MB/s", "upload MB/s", "vs direct (down / up)", "target"], transferRows),
  );

  // WebSocket.
  const dw = results.ws.direct;
  const wsRows: string[][] = [];
  for (const p of ["direct", "hopHttp", "hopHttps", "hopTcp"] as const) {
    const r = results.ws[p];
    if (!r) {
      wsRows.push([
        PATH_LABEL[p].replace("Host header", "ws://").replace("front", "front, wss://"),
        results.only ? `not run (--only=${results.only})` : "failed",
      ]);
      continue;
    }
    let vs = "—";
    if (p !== "direct" && dw) {
      ratios[`ws.${p}.p50`] = r.p50Ms / dw.p50Ms;
      ratios[`ws.${p}.p99`] = r.p99Ms / dw.p99Ms;
      vs = `p50 ${times(r.p50Ms / dw.p50Ms)}, p99 ${times(r.p99Ms / dw.p99Ms)}`;
    }
    const label = p === "hopHttp"
      ? "HopGate ws://  (TLS off)"
      : p === "hopHttps"
      ? "HopGate wss:// (self-signed)"
      : p === "hopTcp"
      ? "HopGate wss:// (TCP carrier)"
      : PATH_LABEL[p];
    wsRows.push([label, num(r.p50Ms, 3), num(r.p99Ms, 3), num(r.meanMs, 3), vs]);
  }
  out.push(
    "",
    "WebSocket echo round trip",
    table(["path", "p50 ms", "p99 ms", "mean ms", "vs direct"], wsRows),
  );

  out.push(...refsSection(results, { table, ratios, target }));

  // Memory.
  const memRows: string[][] = [];
  for (const [stack, m] of Object.entries(results.memory)) {
    for (const proc of ["server", "client"] as const) {
      memRows.push([
        `${
          stack === "hopHttps" ? "HTTPS stack" : stack === "hopTcp" ? "TCP-carrier stack" : "HTTP stack"
        } ${proc}`,
        mb(m.idleKb?.[proc]),
        mb(m.smallLoadPeakKb?.[proc]),
        mb(m.transferPeakKb?.[proc]),
        mb(m.afterKb?.[proc]),
      ]);
    }
  }
  out.push(
    "",
    "Resident memory (VmRSS, MB)",
    table(["process", "idle", "small-request peak", "transfer peak", "after the run"], memRows),
  );
  const fresh = Object.values(results.memory).map((m) => m.freshDbServerKb).filter((k) => k !== undefined);
  if (fresh.length) {
    out.push(
      `  servers above were restarted on their database; the first start, which created it, idled at ${
        fresh.map((k) => mb(k)).join(" / ")
      } MB (PGlite's WASM memory grows while creating the database and never shrinks)`,
    );
  }
  const s = results.memory.hopHttps?.sessions;
  if (s) {
    ratios["sessions.serverKbPerSession"] = s.serverKbPerSession;
    out.push(
      `  ${s.opened} idle tunnel sessions (${s.failed} failed, opened in ${
        num(s.openSeconds, 1)
      } s, server counted ${s.serverSessionsReported} incl. the bench client): server RSS ${
        mb(s.serverRssBeforeKb)
      } → ${mb(s.serverRssAfterKb)} MB = ${num(s.serverKbPerSession, 1)} kB per session [≤200 kB: ${
        target(
          "idle session ≤ 200 kB on the server",
          `${num(s.serverKbPerSession, 1)} kB`,
          s.serverKbPerSession <= 200,
        )
      }]; after closing them ${mb(s.serverRssAfterCloseKb)} MB`,
      `  the sessions' own side (library in one process: DTLS socket + transport + control stream): ${
        num(s.driverKbPerSession, 1)
      } kB per session`,
    );
  } else out.push("  idle sessions: not measured (see problems)");

  // Lossy.
  out.push(
    "",
    `Namespace with loopback MTU 1 500; loss on the tunnel's UDP port only (TCP baseline: on the origin's port)`,
  );
  if (results.lossy.skipped) out.push(`  skipped: ${results.lossy.skipped}`);
  else {
    const rows = results.lossy.rows;
    const find = (cond: string, path: LossyRow["path"]) =>
      rows.find((r) => r.condition === cond && r.path === path);
    const nd = rows.find((r) => r.loss === 0 && r.path === "direct");
    const nh = rows.find((r) => r.loss === 0 && r.path === "hopHttp");
    const nt = rows.find((r) => r.loss === 0 && r.path === "hopTcp");
    const lossRows: string[][] = [];
    for (const r of rows) {
      const ref = r.path === "hopHttp" ? nh : r.path === "hopTcp" ? nt : nd;
      const rs = r.small;
      const vsDirect = rs && nd?.small && r.path !== "direct" ? rs.rps / nd.small.rps : NaN;
      const vsNoLoss = rs && ref?.small && r !== ref ? rs.rps / ref.small.rps : NaN;
      const dd = r.download && nd?.download && r.path !== "direct"
        ? r.download.mbPerS / nd.download.mbPerS
        : NaN;
      const dn = r.download && ref?.download && r !== ref ? r.download.mbPerS / ref.download.mbPerS : NaN;
      const key = `lossy.${r.condition.replace(/\s+/g, "")}.${r.path}`;
      if (!Number.isNaN(vsDirect)) ratios[`${key}.rps_vs_direct`] = vsDirect;
      if (!Number.isNaN(vsNoLoss)) ratios[`${key}.rps_vs_noloss`] = vsNoLoss;
      if (!Number.isNaN(dd)) ratios[`${key}.download_vs_direct`] = dd;
      if (!Number.isNaN(dn)) ratios[`${key}.download_vs_noloss`] = dn;
      let t = "";
      if (r.path === "hopHttp" && Math.abs(r.loss - 0.02) < 1e-9 && rs) {
        t = `≥40% no-loss & p99≤100ms: ${
          target(
            "2% loss: ≥ 40% of no-loss req/s, p99 ≤ 100 ms",
            `${pct(vsNoLoss)}, p99 ${num(rs.p99Ms, 1)} ms, ${rs.errors.timeout} timeouts`,
            // Against a broken no-loss figure the ratio means nothing.
            nh?.small && nh.small.rps > 0 && errCount(nh.small) === 0
              ? vsNoLoss >= 0.4 && rs.p99Ms <= 100 && errCount(rs) === 0
              : null,
          )
        }`;
      }
      const stalled = rs !== undefined && rs.requests === 0;
      lossRows.push([
        r.condition,
        r.path === "hopHttp"
          ? "HopGate HTTP"
          : r.path === "hopTcp"
          ? "HopGate HTTPS, TCP carrier"
          : r.path === "baseline"
          ? "TCP baseline (direct)"
          : "direct → origin",
        rs ? num(rs.rps) : "failed",
        rs && !stalled ? num(rs.p50Ms, 2) : "—",
        rs && !stalled ? num(rs.p99Ms, 2) : "—",
        stalled ? "none answered" : rs ? errText(rs) : "",
        pct(vsDirect),
        pct(vsNoLoss),
        mbps(r.download),
        pct(dd),
        pct(dn),
        t,
      ]);
    }
    out.push(
      table(
        [
          "condition",
          "path",
          "req/s",
          "p50 ms",
          "p99 ms",
          "errors",
          "vs direct",
          "vs no-loss",
          "download MB/s",
          "vs direct",
          "vs no-loss",
          "target",
        ],
        lossRows,
        2,
      ),
    );
    out.push(
      `  vs direct: against "direct → origin" at MTU 1 500 without loss; vs no-loss: HopGate against HopGate at MTU 1 500,`,
      `  the TCP baseline against direct. Downloads under loss are capped at ${c.lossyTransferMaxS} s (partial = MB moved by then).`,
      "  Tunnel datagrams over 1 500 bytes are dropped in the namespace (lo would otherwise fragment and reassemble them).",
      "  TCP carrier rows: a self-signed stack whose client runs the tunnel over TLS/TCP (HOP_CLIENT_TRANSPORT=tcp), the loss",
      "  on that TCP port; wrk and curl reach it over HTTPS, so compare them with each other and with the TCP baseline.",
    );
    if (rows.some((r) => r.condition.includes("mid-session"))) {
      out.push(
        "  MTU 64K→1500 mid-session: a new client session first runs without that rule (its packet size discovery",
        "  reaches 16 KB through IP fragments), then the rule comes back: the path MTU shrinking under a live session.",
      );
    }
    for (const p of c.lossRates) {
      const cond = `${p * 100}% loss`;
      const h = find(cond, "hopHttp");
      const b = find(cond, "baseline");
      if (h?.small && b?.small) {
        const rr = h.small.rps / b.small.rps;
        const dr = h.download && b.download ? h.download.mbPerS / b.download.mbPerS : NaN;
        ratios[`lossy.${cond.replace(/\s+/g, "")}.hop_vs_tcp_baseline.rps`] = rr;
        ratios[`lossy.${cond.replace(/\s+/g, "")}.hop_vs_tcp_baseline.download`] = dr;
        out.push(
          `  at ${cond}: HopGate / TCP baseline = ${times(rr)} req/s, p99 ${num(h.small.p99Ms, 1)} vs ${
            num(b.small.p99Ms, 1)
          } ms, download ${times(dr)}`,
        );
      }
    }
  }

  if (results.profiles) {
    out.push(
      "",
      "CPU profiles: a separate HTTP stack under the small-request load only (plus its start-up and shutdown)",
    );
    for (const [who, p] of Object.entries(results.profiles)) {
      out.push(`  ${who}: ${p.file}`, ...p.summary.split("\n").map((l) => `    ${l}`));
    }
  }

  // Problems and logs.
  if (results.problems.length) {
    out.push("", "Problems (phases that failed)");
    for (const p of results.problems) out.push(`  ${p.split("\n")[0]}`);
  }
  out.push("", "Process logs (request lines are the access log; warn/error lines grouped by message)");
  for (const [name, l] of Object.entries(results.logs)) {
    const levels = Object.entries(l.byLevel).filter(([k]) => k !== "info").map(([k, v]) => `${k} ${v}`).join(
      ", ",
    );
    out.push(`  ${name}: ${l.lines} lines, ${l.requests} request lines${levels ? `; ${levels}` : ""}`);
    for (const n of l.notable.slice(0, 6)) out.push(`    ${n.slice(0, 300)}`);
  }
  return out.join("\n");
}
