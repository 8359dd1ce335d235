/**
 * Writes deploy/grafana/hopgate-dashboard.json: the Grafana dashboard for HopGate's metrics and
 * logs. Generated so panels stay uniform; run again after changing the panel list.
 */
type Target = { expr: string; legendFormat?: string };
interface PanelSpec {
  title: string;
  targets: Target[];
  unit?: string;
  w?: number;
  kind?: "timeseries" | "stat" | "logs";
}

const PROM = { type: "prometheus", uid: "${DS_PROMETHEUS}" };
const LOKI = { type: "loki", uid: "${DS_LOKI}" };

const panels: PanelSpec[] = [
  {
    title: "Requests/s by status class",
    targets: [{
      expr: "sum by (status_class) (rate(hopgate_requests_total[$__rate_interval]))",
      legendFormat: "{{status_class}}",
    }],
    unit: "reqps",
  },
  {
    title: "Requests/s by domain",
    targets: [{
      expr: 'sum by (domain) (rate(hopgate_requests_total{domain=~"$domain"}[$__rate_interval]))',
      legendFormat: "{{domain}}",
    }],
    unit: "reqps",
  },
  {
    title: "Request duration p50 / p99",
    targets: [
      {
        expr:
          'histogram_quantile(0.5, sum by (le) (rate(hopgate_request_duration_seconds_bucket{domain=~"$domain"}[$__rate_interval])))',
        legendFormat: "p50",
      },
      {
        expr:
          'histogram_quantile(0.99, sum by (le) (rate(hopgate_request_duration_seconds_bucket{domain=~"$domain"}[$__rate_interval])))',
        legendFormat: "p99",
      },
    ],
    unit: "s",
  },
  {
    title: "Bytes/s through the tunnel",
    targets: [{
      expr: 'sum by (direction) (rate(hopgate_bytes_total{domain=~"$domain"}[$__rate_interval]))',
      legendFormat: "{{direction}}",
    }],
    unit: "Bps",
  },
  {
    title: "Live sessions",
    targets: [{ expr: 'sum by (domain) (hopgate_sessions{domain=~"$domain"})', legendFormat: "{{domain}}" }],
    unit: "short",
  },
  {
    title: "DTLS handshakes/s",
    targets: [{
      expr: "sum by (result) (rate(hopgate_dtls_handshakes_total[$__rate_interval]))",
      legendFormat: "{{result}}",
    }],
    unit: "ops",
  },
  {
    title: "Retransmitted frames/s",
    targets: [{
      expr: "rate(hopgate_transport_retransmitted_frames_total[$__rate_interval])",
      legendFormat: "frames",
    }],
    unit: "ops",
  },
  {
    title: "Smoothed RTT per session",
    targets: [{
      expr: 'hopgate_session_smoothed_rtt_seconds{domain=~"$domain"}',
      legendFormat: "{{domain}} {{session}}",
    }],
    unit: "s",
  },
  {
    title: "Congestion window per session",
    targets: [{
      expr: 'hopgate_session_congestion_window_bytes{domain=~"$domain"}',
      legendFormat: "{{domain}} {{session}}",
    }],
    unit: "bytes",
  },
  {
    title: "Certificate days left",
    targets: [{
      expr: "(hopgate_certificate_expiry_timestamp_seconds - time()) / 86400",
      legendFormat: "{{hostname}}",
    }],
    unit: "d",
    kind: "stat",
  },
  {
    title: "Process memory",
    targets: [{ expr: "hopgate_process_memory_bytes", legendFormat: "{{job}} {{kind}}" }],
    unit: "bytes",
  },
  {
    title: "Errors and warnings (Loki)",
    targets: [{ expr: '{job="hopgate"} | json | level=~"warn|error"' }],
    kind: "logs",
    w: 24,
  },
  {
    title: "Requests (Loki)",
    targets: [{ expr: '{job="hopgate"} | json | msg="request" | domain=~"$domain"' }],
    kind: "logs",
    w: 24,
  },
];

let x = 0;
let y = 0;
const built = panels.map((p, i) => {
  const w = p.w ?? 12;
  const h = p.kind === "logs" ? 10 : 8;
  if (x + w > 24) {
    x = 0;
    y += 8;
  }
  const gridPos = { x, y, w, h };
  x += w;
  const kind = p.kind ?? "timeseries";
  return {
    id: i + 1,
    type: kind,
    title: p.title,
    datasource: kind === "logs" ? LOKI : PROM,
    gridPos,
    targets: p.targets.map((t, j) => ({
      refId: String.fromCharCode(65 + j),
      datasource: kind === "logs" ? LOKI : PROM,
      ...t,
    })),
    fieldConfig: { defaults: { unit: p.unit ?? "short" }, overrides: [] },
    options: kind === "logs" ? { showTime: true, wrapLogMessage: true, sortOrder: "Descending" } : {},
  };
});

const dashboard = {
  __inputs: [
    { name: "DS_PROMETHEUS", label: "Prometheus", type: "datasource", pluginId: "prometheus" },
    { name: "DS_LOKI", label: "Loki", type: "datasource", pluginId: "loki" },
  ],
  title: "HopGate",
  uid: "hopgate",
  tags: ["hopgate", "tunnel"],
  timezone: "browser",
  schemaVersion: 39,
  version: 1,
  refresh: "30s",
  time: { from: "now-6h", to: "now" },
  templating: {
    list: [{
      name: "domain",
      type: "query",
      datasource: PROM,
      query: "label_values(hopgate_requests_total, domain)",
      includeAll: true,
      multi: true,
      current: { text: "All", value: "$__all" },
      allValue: ".*",
    }],
  },
  panels: built,
};

const out = new URL("../deploy/grafana/hopgate-dashboard.json", import.meta.url);
await Deno.writeTextFile(out, JSON.stringify(dashboard, null, 2) + "\n");
console.log(`wrote ${out.pathname} (${built.length} panels)`);
