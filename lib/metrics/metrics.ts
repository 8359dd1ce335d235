/**
 * Prometheus metrics. Request figures are pushed as requests finish; session, handshake and
 * certificate figures are pulled from their owners at scrape time, so no layer keeps a second
 * copy of state it already has.
 */
import client from "prom-client";
import type { ConnectionStats } from "../transport/types.ts";

export interface SessionSample {
  id: string;
  domain: string;
  /** Which carrier the session runs on (DTLS over UDP, or TLS over TCP). */
  carrier?: "udp" | "tcp";
  stats: ConnectionStats;
}

export interface HandshakeCounts {
  /** Completed handshakes since start. */
  succeeded: number;
  /** Handshakes that failed (bad key, unknown identity, timeout) since start. */
  failed: number;
  /** ClientHellos dropped by the per-address rate limits since start. */
  rateLimited?: number;
  /** Half-open handshakes dropped to make room for a less busy address since start. */
  evicted?: number;
}

/** The admin API's authentication figures since start. */
export interface AdminAuthCounts {
  /** Requests with a missing or wrong bearer key. */
  failures: number;
  /** Requests answered 429 (the address used up its failures). */
  rateLimited: number;
}

/** Where scrape-time figures come from. Every source is optional. */
export interface MetricSources {
  sessions?(): SessionSample[];
  handshakes?(): HandshakeCounts;
  /** Certificates' not-after by host name. */
  certificates?(): { hostname: string; notAfter: Date }[];
  adminAuth?(): AdminAuthCounts;
}

export interface RequestSample {
  domain: string;
  status: number;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
}

export interface Metrics {
  readonly registry: client.Registry;
  observeRequest(sample: RequestSample): void;
  /** A request the domain's access policy refused at the edge (reason: ip_deny, ip_allow, rate_limit, basic_auth). */
  observePolicyDenial(domain: string, reason: string): void;
  /** The Prometheus text exposition. */
  text(): Promise<string>;
  readonly contentType: string;
}

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Feeds a counter from a total that only grows, by the difference since the last scrape. */
function deltaCounter(counter: client.Counter<string>) {
  const last = new Map<string, number>();
  return (labels: Record<string, string>, total: number) => {
    const key = JSON.stringify(labels);
    const delta = total - (last.get(key) ?? 0);
    if (delta > 0) counter.inc(labels, delta);
    last.set(key, Math.max(total, last.get(key) ?? 0));
  };
}

/** Creates a registry with HopGate's metrics; `prefix` is hopgate_ on the server, hopgate_client_ on the client. */
export function createMetrics(sources: MetricSources = {}, prefix = "hopgate_"): Metrics {
  const registry = new client.Registry();
  const requests = new client.Counter({
    name: `${prefix}requests_total`,
    help: "HTTP requests by domain and status class.",
    labelNames: ["domain", "status_class"],
    registers: [registry],
  });
  const duration = new client.Histogram({
    name: `${prefix}request_duration_seconds`,
    help: "Time from request to the end of the response body.",
    labelNames: ["domain"],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const bytes = new client.Counter({
    name: `${prefix}bytes_total`,
    help: "Body bytes through the tunnel; direction in = request bodies, out = response bodies.",
    labelNames: ["domain", "direction"],
    registers: [registry],
  });
  const handshakes = new client.Counter({
    name: `${prefix}dtls_handshakes_total`,
    help: "DTLS handshakes by result.",
    labelNames: ["result"],
    registers: [registry],
    // Fed here, not by another metric's collect, so a scrape shows the figures of that moment.
    collect() {
      const h = sources.handshakes?.();
      if (h) {
        feedHandshakes({ result: "ok" }, h.succeeded);
        feedHandshakes({ result: "failed" }, h.failed);
      }
    },
  });
  const retransmissions = new client.Counter({
    name: `${prefix}transport_retransmitted_frames_total`,
    help: "Frames sent again after loss, summed over live sessions' lifetimes.",
    registers: [registry],
  });
  const policyDenials = new client.Counter({
    name: `${prefix}policy_denials_total`,
    help: "Requests refused at the edge by a domain's access policy, by reason.",
    labelNames: ["domain", "reason"],
    registers: [registry],
  });
  const handshakesDropped = new client.Counter({
    registers: [registry],
    name: `${prefix}dtls_handshakes_dropped_total`,
    help: "DTLS ClientHellos or half-open handshakes dropped, by reason (rate_limited, evicted).",
    labelNames: ["reason"],
    collect() {
      const h = sources.handshakes?.();
      feedDropped({ reason: "rate_limited" }, h?.rateLimited ?? 0);
      feedDropped({ reason: "evicted" }, h?.evicted ?? 0);
    },
  });
  const adminAuth = new client.Counter({
    registers: [registry],
    name: `${prefix}admin_auth_failures_total`,
    help: "Admin API requests refused, by result: unauthorized (401) or rate_limited (429).",
    labelNames: ["result"],
    collect() {
      const a = sources.adminAuth?.();
      feedAdminAuth({ result: "unauthorized" }, a?.failures ?? 0);
      feedAdminAuth({ result: "rate_limited" }, a?.rateLimited ?? 0);
    },
  });
  const feedDropped = deltaCounter(handshakesDropped);
  const feedAdminAuth = deltaCounter(adminAuth);
  const feedHandshakes = deltaCounter(handshakes);
  const feedRetransmissions = deltaCounter(retransmissions);
  let retransmittedByClosed = 0;
  const lastRetransmitted = new Map<string, number>();

  new client.Gauge({
    name: `${prefix}sessions`,
    help: "Live tunnel sessions by domain.",
    labelNames: ["domain"],
    registers: [registry],
    collect() {
      this.reset();
      const list = sources.sessions?.() ?? [];
      for (const s of list) this.inc({ domain: s.domain });
      const live = new Set(list.map((s) => s.id));
      for (const [id, n] of lastRetransmitted) {
        if (!live.has(id)) {
          retransmittedByClosed += n;
          lastRetransmitted.delete(id);
        }
      }
      for (const s of list) lastRetransmitted.set(s.id, s.stats.retransmittedFrames);
      let total = retransmittedByClosed;
      for (const n of lastRetransmitted.values()) total += n;
      feedRetransmissions({}, total);
    },
  });
  new client.Gauge({
    name: `${prefix}sessions_by_carrier`,
    help: "Live tunnel sessions by domain and carrier (udp: DTLS, tcp: TLS fallback).",
    labelNames: ["domain", "carrier"],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of sources.sessions?.() ?? []) this.inc({ domain: s.domain, carrier: s.carrier ?? "udp" });
    },
  });
  new client.Gauge({
    name: `${prefix}session_smoothed_rtt_seconds`,
    help: "Smoothed round-trip time per session (RFC 9002 smoothed_rtt).",
    labelNames: ["domain", "session"],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of sources.sessions?.() ?? []) {
        this.set({ domain: s.domain, session: s.id }, s.stats.smoothedRttMs / 1000);
      }
    },
  });
  new client.Gauge({
    name: `${prefix}session_congestion_window_bytes`,
    help: "Congestion window per session.",
    labelNames: ["domain", "session"],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of sources.sessions?.() ?? []) {
        this.set({ domain: s.domain, session: s.id }, s.stats.congestionWindow);
      }
    },
  });
  new client.Gauge({
    name: `${prefix}certificate_expiry_timestamp_seconds`,
    help: "Not-after of the certificate served for each host name, as a Unix time.",
    labelNames: ["hostname"],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of sources.certificates?.() ?? []) {
        this.set({ hostname: c.hostname }, Math.floor(c.notAfter.getTime() / 1000));
      }
    },
  });
  new client.Gauge({
    name: `${prefix}process_memory_bytes`,
    help: "Process memory by kind (rss, heap_used, heap_total, external).",
    labelNames: ["kind"],
    registers: [registry],
    collect() {
      const m = Deno.memoryUsage();
      this.set({ kind: "rss" }, m.rss);
      this.set({ kind: "heap_used" }, m.heapUsed);
      this.set({ kind: "heap_total" }, m.heapTotal);
      this.set({ kind: "external" }, m.external);
    },
  });

  return {
    registry,
    contentType: registry.contentType,
    observeRequest(s) {
      const statusClass = s.status === 0 ? "aborted" : `${Math.floor(s.status / 100)}xx`;
      requests.inc({ domain: s.domain, status_class: statusClass });
      duration.observe({ domain: s.domain }, s.durationMs / 1000);
      if (s.bytesIn) bytes.inc({ domain: s.domain, direction: "in" }, s.bytesIn);
      if (s.bytesOut) bytes.inc({ domain: s.domain, direction: "out" }, s.bytesOut);
    },
    observePolicyDenial(domain, reason) {
      policyDenials.inc({ domain, reason });
    },
    text: () => registry.metrics(),
  };
}

/** Serves GET /metrics on its own listener (never the public port). */
export function serveMetrics(
  metrics: Metrics,
  listen: { hostname: string; port: number },
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: listen.hostname, port: listen.port, onListen() {} }, async (req) => {
    if (new URL(req.url).pathname !== "/metrics") return new Response("see /metrics\n", { status: 404 });
    return new Response(await metrics.text(), { headers: { "content-type": metrics.contentType } });
  });
}
