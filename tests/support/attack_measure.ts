/**
 * Runs issue 11's attacks against a real server process and prints figures (server RSS, CPU, how
 * long a legitimate client waits, how many attempts got through), for the before/after table.
 *
 *   deno run -A tests/support/attack_measure.ts [dtls|halfopen|admin|hellos|files|lock|all]
 */
import { ADMIN_KEY, startTestServer, type TestServer } from "./server.ts";
import { startProcess } from "./process.ts";
import { wireHandshake, type WireTarget } from "./dtls_wire.ts";
import { pskFromApiKey } from "../../lib/dtls/psk.ts";
import { ContentType, DTLS_1_0, HandshakeType } from "../../lib/dtls/constants.ts";
import { encodeClientHello, encodeHandshakeMessage } from "../../lib/dtls/messages.ts";
import { decodeRecords, encodeRecord } from "../../lib/dtls/record.ts";

const DOMAIN = "app.example.com";
const TICKS = 100; // USER_HZ on Linux

function procStats(pid: number): { rssMb: number; cpuS: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  return { rssMb: Math.round(rssKb / 1024), cpuS: (Number(stat[11]) + Number(stat[12])) / TICKS };
}

/** Samples the server's RSS every 100 ms while `fn` runs; returns peak RSS, CPU used and wall time. */
async function measured<T>(pid: number, fn: () => Promise<T>) {
  const before = procStats(pid);
  let peak = before.rssMb;
  const timer = setInterval(() => (peak = Math.max(peak, procStats(pid).rssMb)), 100);
  const t0 = performance.now();
  try {
    const result = await fn();
    const wallS = (performance.now() - t0) / 1000;
    const after = procStats(pid);
    const cpu = after.cpuS - before.cpuS;
    return {
      result,
      rssBeforeMb: before.rssMb,
      rssPeakMb: peak,
      cpuS: +cpu.toFixed(2),
      wallS: +wallS.toFixed(2),
      cores: +(cpu / wallS).toFixed(2),
    };
  } finally {
    clearInterval(timer);
  }
}

async function withServer(
  fn: (s: TestServer, target: WireTarget, psk: Uint8Array, dir: string) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "hopgate-measure-" });
  const server = await startTestServer({ dataDir: dir, env: { HOP_LOG_LEVEL: "info" } });
  try {
    const res = await server.admin("/domains", { method: "POST", body: JSON.stringify({ domain: DOMAIN }) });
    const key = (await res.json()).client_api_key as string;
    const [hostname, port] = String(server.ready.dtls).split(":");
    await fn(server, { hostname, port: Number(port) }, pskFromApiKey(key), dir);
  } finally {
    await server.proc.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function legitimate(target: WireTarget, psk: Uint8Array, timeoutMs: number) {
  const t0 = performance.now();
  const r = await wireHandshake(target, {
    bind: "127.0.0.1",
    identity: DOMAIN,
    psk,
    timeoutMs,
    resendMs: 500,
  });
  return { result: r, ms: Math.round(performance.now() - t0) };
}

async function dtlsFlood() {
  await withServer(async (server, target, psk) => {
    const pid = server.proc.child.pid;
    const wrong = crypto.getRandomValues(new Uint8Array(32));
    const out: string[] = [];
    let legit: unknown;
    const m = await measured(pid, async () => {
      const until = Date.now() + 5000;
      const loops = Array.from({ length: 8 }, async () => {
        while (Date.now() < until) {
          out.push(
            await wireHandshake(target, {
              bind: "127.0.0.9",
              identity: DOMAIN,
              psk: wrong,
              timeoutMs: 300,
              resendMs: 300,
            }),
          );
        }
      });
      await new Promise((r) => setTimeout(r, 2500));
      legit = await legitimate(target, psk, 10_000);
      await Promise.all(loops);
    });
    // Recovery: how long until the attacking address itself gets a handshake through again.
    const t0 = performance.now();
    let recovered = "no";
    while (performance.now() - t0 < 30_000) {
      const r = await wireHandshake(target, {
        bind: "127.0.0.9",
        identity: DOMAIN,
        psk,
        timeoutMs: 500,
        resendMs: 500,
      });
      if (r === "established") {
        recovered = `${Math.round(performance.now() - t0)} ms`;
        break;
      }
    }
    const failed = out.filter((r) => r === "failed").length;
    const warns = server.proc.lines.filter((l) => l.level === "warn").length;
    console.log(
      JSON.stringify({
        attack: "wrong-PSK handshakes, 1 address, 5 s",
        same_address_recovers_in: recovered,
        processed: failed,
        per_s: +(failed / 5).toFixed(1),
        dropped: out.length - failed,
        warn_lines: warns,
        legit,
        ...m,
      }),
    );
  });
}

async function halfOpen() {
  await withServer(async (server, target, psk) => {
    const pid = server.proc.child.pid;
    const attacker = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./half_open_flood.ts", import.meta.url).pathname,
        target.hostname,
        String(target.port),
        DOMAIN,
        "80",
        "16",
      ],
      stdout: "piped",
      stdin: "null",
    }).spawn();
    try {
      const reader = attacker.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const m = await measured(pid, async () => {
        const opened = JSON.parse(String((await reader.read()).value)).ready as number;
        return { opened, legit: await legitimate(target, psk, 40_000) };
      });
      reader.releaseLock();
      console.log(JSON.stringify({ attack: "1280 half-open handshakes from 80 addresses, in waves", ...m }));
    } finally {
      attacker.kill("SIGKILL");
      await attacker.status;
      await attacker.stdout.cancel().catch(() => {});
    }
  });
}

async function adminBrute() {
  await withServer(async (server) => {
    const pid = server.proc.child.pid;
    const counts: Record<number, number> = {};
    const m = await measured(pid, async () => {
      let n = 0;
      await Promise.all(Array.from({ length: 16 }, async () => {
        while (n < 3000) {
          n++;
          const r = await fetch(`${server.httpUrl}/api/v1/admin/domains`, {
            headers: { authorization: `Bearer guess-${n}-0123456789abcdef` },
          });
          await r.body?.cancel();
          counts[r.status] = (counts[r.status] ?? 0) + 1;
        }
      }));
    });
    const t0 = performance.now();
    let recovered = "no";
    while (performance.now() - t0 < 30_000) {
      const r = await server.admin("/domains");
      await r.body?.cancel();
      if (r.status === 200) {
        recovered = `${Math.round(performance.now() - t0)} ms`;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const warns = server.proc.lines.filter((l) => l.level === "warn").length;
    console.log(
      JSON.stringify({
        attack: "3000 wrong admin bearer keys, 1 address",
        right_key_same_address_after: recovered,
        statuses: counts,
        per_s: Math.round(3000 / m.wallS),
        warn_lines: warns,
        ...m,
      }),
    );
    const zz = await server.admin("/domains/%ZZ");
    await zz.body?.cancel();
    console.log(JSON.stringify({ attack: "GET /api/v1/admin/domains/%ZZ", status: zz.status }));
  });
}

async function hellos() {
  await withServer(async (_server, target) => {
    const hello = {
      clientVersion: 0xfefd,
      random: new Uint8Array(32),
      sessionId: new Uint8Array(0),
      cookie: new Uint8Array(0),
      cipherSuites: [0x00a8],
      compressionMethods: Uint8Array.of(0),
      extensions: [],
    };
    const fragment = encodeHandshakeMessage(HandshakeType.client_hello, 0, encodeClientHello(hello));
    const rec = encodeRecord({
      type: ContentType.handshake,
      version: DTLS_1_0,
      epoch: 0,
      sequence: 0,
      length: fragment.length,
      fragment,
    });
    const n = Math.floor(60_000 / rec.length);
    const datagram = new Uint8Array(n * rec.length);
    for (let i = 0; i < n; i++) datagram.set(rec, i * rec.length);
    const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    await sock.send(datagram, { transport: "udp", ...target });
    let replies = 0;
    const buf = new Uint8Array(65536);
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      let t: ReturnType<typeof setTimeout> | undefined;
      const got = await Promise.race([
        sock.receive(buf),
        new Promise<null>((r) => (t = setTimeout(() => r(null), until - Date.now()))),
      ]);
      clearTimeout(t);
      if (!got) break;
      replies += decodeRecords(got[0]).length;
    }
    sock.close();
    console.log(
      JSON.stringify({
        attack: `one datagram of ${n} ClientHellos (${datagram.length} B)`,
        hello_verify_requests: replies,
      }),
    );
  });
}

async function files() {
  for (const umask of [0o022, 0o000]) {
    const previous = Deno.umask(umask);
    await withServer(async (server, _t, psk, dir) => {
      await server.proc.stop("SIGTERM");
      let total = 0, open = 0, holding = 0;
      const key = Array.from(psk, (b) => b.toString(16).padStart(2, "0")).join("");
      const walk = async (p: string): Promise<void> => {
        const info = await Deno.lstat(p);
        if (info.isSymlink) return;
        total++;
        if (((info.mode ?? 0) & 0o077) !== 0) open++;
        if (info.isDirectory) { for await (const e of Deno.readDir(p)) await walk(`${p}/${e.name}`); }
        else if (new TextDecoder("latin1").decode(await Deno.readFile(p)).includes(key)) holding++;
      };
      await walk(dir);
      console.log(
        JSON.stringify({
          attack: `local user reads the data dir (umask ${umask.toString(8).padStart(3, "0")})`,
          entries: total,
          readable_by_others: open,
          files_holding_the_key: holding,
        }),
      );
    });
    Deno.umask(previous);
  }
}

async function lock() {
  await withServer(async (server, _t, _p, dir) => {
    const second = startProcess("server.ts", [], {
      HOP_SERVER_DOMAIN: "hop.test",
      HOP_ADMIN_API_KEY: ADMIN_KEY,
      HOP_DATA_DIR: dir,
      HOP_SERVER_TLS_MODE: "off",
      HOP_SERVER_HTTP_LISTEN: "127.0.0.1:0",
      HOP_SERVER_DTLS_LISTEN: "127.0.0.1:0",
      HOP_SERVER_METRICS_LISTEN: "off",
    });
    const ready = await Promise.race([
      second.waitFor((l) => l.msg === "server ready", 20_000).then(() => "started"),
      second.status.then((s) => `exited ${s.code}`),
    ]).catch(() => "timeout");
    if (ready === "started") await second.stop("SIGKILL");
    console.log(
      JSON.stringify({
        attack: "second server on the same data dir",
        second: ready,
        stderr: second.stderr().trim().split("\n").pop(),
      }),
    );
    await server.proc.stop("SIGKILL");
  });
}

const which = Deno.args[0] ?? "all";
const all: Record<string, () => Promise<void>> = {
  dtls: dtlsFlood,
  halfopen: halfOpen,
  admin: adminBrute,
  hellos,
  files,
  lock,
};
for (const [name, fn] of Object.entries(all)) if (which === "all" || which === name) await fn();
