/**
 * Runs issue 11's attacks against a real server process and prints figures (server RSS, CPU, how
 * long a legitimate client waits, how many attempts got through), for the before/after table.
 *
 *   deno run -A tests/support/attack_measure.ts [dtls|halfopen|admin|hellos|files|lock|all]
 */
import { ADMIN_KEY } from "./server.ts";
import { startProcess } from "./process.ts";
import { wireHandshake, type WireTarget } from "./dtls_wire.ts";
import {
  clientHelloDatagram,
  countRecordReplies,
  FLOOD_DOMAIN as DOMAIN,
  startHalfOpenFlood,
  startWrongKeyFlood,
  withFloodServer,
} from "./dtls_flood.ts";
import { decodeRecords } from "../../lib/dtls/record.ts";
import { sleep } from "./wait.ts";
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
  await withFloodServer(async ({ server, target, psk }) => {
    const pid = server.proc.child.pid;
    let out: string[] = [];
    let legit: unknown;
    const m = await measured(pid, async () => {
      const flood = startWrongKeyFlood(target, {
        bind: "127.0.0.9",
        attackers: 8,
        durationMs: 5000,
        timeoutMs: 300,
        resendMs: 300,
      });
      out = flood.results;
      await sleep(2500);
      legit = await legitimate(target, psk, 10_000);
      await flood.done;
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
  await withFloodServer(async ({ server, target, psk }) => {
    const pid = server.proc.child.pid;
    const flood = startHalfOpenFlood(target, 80, 16);
    try {
      const m = await measured(pid, async () => {
        const opened = await flood.opened;
        return { opened, legit: await legitimate(target, psk, 40_000) };
      });
      console.log(JSON.stringify({ attack: "1280 half-open handshakes from 80 addresses, in waves", ...m }));
    } finally {
      await flood.stop();
    }
  });
}

async function adminBrute() {
  await withFloodServer(async ({ server }) => {
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
      await sleep(100);
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
  await withFloodServer(async ({ target }) => {
    const datagram = clientHelloDatagram(Infinity, 60_000);
    const replies = await countRecordReplies(target, datagram, 1500);
    console.log(
      JSON.stringify({
        attack: `one datagram of ${decodeRecords(datagram).length} ClientHellos (${datagram.length} B)`,
        hello_verify_requests: replies,
      }),
    );
  });
}

async function files() {
  for (const umask of [0o022, 0o000]) {
    const previous = Deno.umask(umask);
    await withFloodServer(async ({ server, psk, dataDir: dir }) => {
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
  await withFloodServer(async ({ server, dataDir: dir }) => {
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
