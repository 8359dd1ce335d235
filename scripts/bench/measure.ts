/**
 * The measurements: wrk for small requests, curl for one big download/upload, the npm `ws` client
 * for WebSocket echo round trips. Everything targets 127.0.0.1 (a made-up host name is pinned to
 * it with --resolve / lookup), optionally inside a network namespace.
 */
import WebSocket from "ws";
import { run } from "./proc.ts";

export interface SmallResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  seconds: number;
  /** wrk's socket errors (timeout = no response within wrk's --timeout; those are not in the percentiles). */
  errors: { connect: number; read: number; write: number; timeout: number };
  non2xx: number;
}

export interface TransferResult {
  mbPerS: number;
  bytes: number;
  seconds: number;
  httpCode: number;
  httpVersion: string;
  /** curl's exit code (28 = --max-time reached: the figure is then for the part transferred). */
  curlExit: number;
  complete: boolean;
}

export interface EchoResult {
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  roundTrips: number;
}

export const MB = 1_000_000;

function toMs(value: string, unit: string): number {
  const v = Number(value);
  switch (unit) {
    case "us":
      return v / 1000;
    case "ms":
      return v;
    case "s":
      return v * 1000;
    case "m":
      return v * 60_000;
    case "h":
      return v * 3_600_000;
  }
  return NaN;
}

export function parseWrk(out: string): SmallResult {
  const pct = (p: number) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, "m").exec(out);
    return m ? toMs(m[1], m[2]) : NaN;
  };
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m|h)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p50Ms: pct(50),
    p99Ms: pct(99),
    requests: total ? Number(total[1]) : NaN,
    seconds: total ? toMs(total[2], total[3]) / 1000 : NaN,
    errors: {
      connect: Number(sock?.[1] ?? 0),
      read: Number(sock?.[2] ?? 0),
      write: Number(sock?.[3] ?? 0),
      timeout: Number(sock?.[4] ?? 0),
    },
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
  };
}

/** wrk -tT -cN -dS --latency against a URL (optionally with a Host header); T defaults to 1. */
export async function wrk(
  url: string,
  o: { seconds: number; connections: number; host?: string; ns?: string; threads?: number },
): Promise<SmallResult & { raw: string }> {
  const argv = [
    "wrk",
    `-t${o.threads ?? 1}`,
    `-c${o.connections}`,
    `-d${o.seconds}s`,
    "--timeout",
    "5s",
    "--latency",
    ...(o.host ? ["-H", `Host: ${o.host}`] : []),
    url,
  ];
  const r = await run(argv, { ns: o.ns, timeoutMs: (o.seconds + 30) * 1000 });
  if (r.code !== 0) throw new Error(`wrk failed (${r.code}): ${r.stderr || r.stdout}`);
  return { ...parseWrk(r.stdout), raw: r.stdout };
}

/**
 * Small requests at a URL for `seconds`, figures discarded: a fresh process compiles its hot paths in the
 * first seconds under load, which the measured run should not count (the team's harness, shared/peers/
 * bench.sh, warms every row up for 2 s the same way).
 */
export async function warmUp(
  url: string,
  o: { seconds: number; connections: number; host?: string; ns?: string; threads?: number },
): Promise<void> {
  if (o.seconds > 0) await wrk(url, o);
}

interface CurlTarget {
  url: string;
  /** host:port:127.0.0.1 */
  resolve?: string;
  cacert?: string;
  ns?: string;
  maxTimeS: number;
}

function curlBase(t: CurlTarget): string[] {
  return [
    "curl",
    "-sS",
    "--max-time",
    String(t.maxTimeS),
    ...(t.resolve ? ["--resolve", t.resolve] : []),
    ...(t.cacert ? ["--cacert", t.cacert] : []),
  ];
}

const W =
  "%{http_code} %{size_download} %{size_upload} %{time_total} %{speed_download} %{speed_upload} %{http_version}";

function parseCurlW(line: string) {
  const [code, down, up, total, speedDown, speedUp, version] = line.trim().split(" ");
  return {
    httpCode: Number(code),
    down: Number(down),
    up: Number(up),
    seconds: Number(total),
    speedDown: Number(speedDown),
    speedUp: Number(speedUp),
    httpVersion: version ?? "?",
  };
}

/** Downloads `bytes` from /download, discarding them. */
export async function curlDownload(t: CurlTarget, bytes: number): Promise<TransferResult> {
  const url = `${t.url}/download?bytes=${bytes}`;
  const r = await run([...curlBase(t), "-o", "/dev/null", "-w", W, url], {
    ns: t.ns,
    timeoutMs: (t.maxTimeS + 15) * 1000,
  });
  const w = parseCurlW(r.stdout);
  return {
    mbPerS: w.speedDown / MB,
    bytes: w.down,
    seconds: w.seconds,
    httpCode: w.httpCode,
    httpVersion: w.httpVersion,
    curlExit: r.code,
    complete: r.code === 0 && w.httpCode === 200 && w.down === bytes,
  };
}

/** Uploads a file of `bytes` (a sparse one: nothing stored) to /upload; the origin counts them. */
export async function curlUpload(t: CurlTarget, file: string, bytes: number): Promise<TransferResult> {
  const r = await run([...curlBase(t), "-T", file, "-o", "-", "-w", `\n${W}`, `${t.url}/upload`], {
    ns: t.ns,
    timeoutMs: (t.maxTimeS + 15) * 1000,
  });
  const lines = r.stdout.trimEnd().split("\n");
  const w = parseCurlW(lines.pop() ?? "");
  let counted = NaN;
  try {
    counted = JSON.parse(lines.join("\n")).bytes;
  } catch { /* error page */ }
  return {
    mbPerS: w.speedUp / MB,
    bytes: Number.isNaN(counted) ? w.up : counted,
    seconds: w.seconds,
    httpCode: w.httpCode,
    httpVersion: w.httpVersion,
    curlExit: r.code,
    complete: r.code === 0 && w.httpCode === 200 && counted === bytes,
  };
}

/** Pins every name to 127.0.0.1 (the `ws` client's `lookup` option). */
function loopbackLookup(
  _host: string,
  o: { all?: boolean } | undefined,
  cb: (...args: unknown[]) => void,
): void {
  if (o?.all) cb(null, [{ address: "127.0.0.1", family: 4 }]);
  else cb(null, "127.0.0.1", 4);
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Sequential echo round trips of a 32-byte text message over one WebSocket (after a warm-up). */
export async function wsEcho(url: string, roundTrips: number, ca?: string): Promise<EchoResult> {
  // deno-lint-ignore no-explicit-any
  const options: any = { lookup: loopbackLookup, ...(ca ? { ca } : {}) };
  const ws = new WebSocket(url, options);
  const queue: ((data: unknown) => void)[] = [];
  ws.on("message", (data: unknown) => queue.shift()?.(data));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`WebSocket ${url}: no open within 10 s`)), 10_000);
    ws.once("open", () => {
      clearTimeout(timer);
      resolve();
    });
    ws.once("error", (e: Error) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  const message = "0123456789abcdef0123456789abcdef";
  const once = () =>
    new Promise<number>((resolve, reject) => {
      const t0 = performance.now();
      const timer = setTimeout(() => reject(new Error(`WebSocket ${url}: no echo within 10 s`)), 10_000);
      queue.push(() => {
        clearTimeout(timer);
        resolve(performance.now() - t0);
      });
      ws.send(message);
    });
  try {
    for (let i = 0; i < Math.min(100, roundTrips); i++) await once();
    const samples: number[] = [];
    for (let i = 0; i < roundTrips; i++) samples.push(await once());
    samples.sort((a, b) => a - b);
    return {
      p50Ms: percentile(samples, 50),
      p99Ms: percentile(samples, 99),
      meanMs: samples.reduce((a, b) => a + b, 0) / samples.length,
      roundTrips: samples.length,
    };
  } finally {
    ws.close();
  }
}
