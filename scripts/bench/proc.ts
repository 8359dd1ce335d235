/**
 * Child processes for the benchmark: each one's stdout and stderr go straight to a log file (the
 * shell redirects them, so under load this process never copies log lines), optionally inside a
 * network namespace (`ip netns exec NS ...`, which execs: the pid is the program's own). Lines are
 * found by polling the file.
 */

export interface LogSummary {
  lines: number;
  requests: number;
  byLevel: Record<string, number>;
  /** Non-request lines at warn or above, first ones, trimmed. */
  notable: string[];
}

const live = new Set<Proc>();
const created: Proc[] = [];

/** Every process started so far (for the log summaries). */
export function createdProcs(): readonly Proc[] {
  return created;
}

/** `argv` wrapped for a namespace (unchanged when ns is undefined). */
export function inNamespace(argv: string[], ns: string | undefined): string[] {
  return ns === undefined ? argv : ["ip", "netns", "exec", ns, ...argv];
}

export class Proc {
  readonly child: Deno.ChildProcess;
  readonly pid: number;
  #offset = 0;
  #pending = "";
  #exited = false;
  readonly status: Promise<Deno.CommandStatus>;

  constructor(
    readonly name: string,
    argv: string[],
    readonly logFile: string,
    options: { env?: Record<string, string>; ns?: string; stdin?: "piped" | "null" } = {},
  ) {
    const full = inNamespace(["sh", "-c", 'exec "$@" >"$HOPBENCH_LOG" 2>&1', "sh", ...argv], options.ns);
    this.child = new Deno.Command(full[0], {
      args: full.slice(1),
      env: { ...options.env, HOPBENCH_LOG: logFile },
      stdin: options.stdin ?? "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.pid = this.child.pid;
    this.status = this.child.status.then((s) => {
      this.#exited = true;
      live.delete(this);
      return s;
    });
    live.add(this);
    created.push(this);
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** New complete lines since the last call. */
  async #newLines(): Promise<string[]> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.logFile);
    } catch {
      return [];
    }
    try {
      await file.seek(this.#offset, Deno.SeekMode.Start);
      const buf = new Uint8Array(1 << 20);
      let text = "";
      for (;;) {
        const n = await file.read(buf);
        if (n === null || n === 0) break;
        this.#offset += n;
        text += new TextDecoder().decode(buf.subarray(0, n), { stream: true });
        if (n < buf.length) break;
      }
      const all = this.#pending + text;
      const lines = all.split("\n");
      this.#pending = lines.pop() ?? "";
      return lines;
    } finally {
      file.close();
    }
  }

  /** Resolves with the first new JSON line matching `match`; rejects on timeout or exit. */
  async waitJson(
    match: (o: Record<string, unknown>) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<Record<string, unknown>> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      for (const line of await this.#newLines()) {
        if (!line.startsWith("{")) continue;
        try {
          const o = JSON.parse(line) as Record<string, unknown>;
          if (match(o)) return o;
        } catch { /* not JSON */ }
      }
      if (this.#exited) {
        throw new Error(
          `${this.name} exited while waiting for ${what}; see ${this.logFile}:\n${await this.tail()}`,
        );
      }
      if (performance.now() > deadline) {
        throw new Error(
          `${this.name}: no ${what} within ${timeoutMs} ms; see ${this.logFile}:\n${await this.tail()}`,
        );
      }
      await sleep(50);
    }
  }

  async tail(n = 15): Promise<string> {
    const text = await Deno.readTextFile(this.logFile).catch(() => "");
    return text.split("\n").slice(-n - 1).join("\n");
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 4000): Promise<void> {
    if (this.#exited) return;
    try {
      this.child.kill("SIGTERM");
    } catch { /* gone */ }
    const timer = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch { /* gone */ }
    }, graceMs);
    await this.status;
    clearTimeout(timer);
  }

  /** Counts log lines by level and keeps the first notable (warn and above, non-request) ones. */
  async summarize(maxNotable = 12): Promise<LogSummary> {
    const summary: LogSummary = { lines: 0, requests: 0, byLevel: {}, notable: [] };
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.logFile);
    } catch {
      return summary;
    }
    const seen = new Map<string, number>();
    let rest = "";
    const decoder = new TextDecoder();
    const buf = new Uint8Array(1 << 22);
    const take = (line: string) => {
      if (!line) return;
      summary.lines++;
      if (line.includes('"msg":"request"')) {
        summary.requests++;
        const level = /"level":"(\w+)"/.exec(line)?.[1] ?? "?";
        if (level === "info") return;
      }
      const level = /"level":"(\w+)"/.exec(line)?.[1] ?? (line.startsWith("{") ? "" : "text");
      if (!level) return; // the benchmark helpers' own JSON lines
      summary.byLevel[level] = (summary.byLevel[level] ?? 0) + 1;
      if (["warn", "error", "fatal", "text"].includes(level)) {
        // Group by message so a repeated warning shows once with its count.
        const key = /"msg":"([^"]*)"/.exec(line)?.[1] ?? line.slice(0, 100);
        const count = (seen.get(key) ?? 0) + 1;
        seen.set(key, count);
        if (count === 1 && summary.notable.length < maxNotable) summary.notable.push(line.slice(0, 400));
      }
    };
    try {
      for (;;) {
        const n = await file.read(buf);
        if (n === null || n === 0) break;
        const lines = (rest + decoder.decode(buf.subarray(0, n), { stream: true })).split("\n");
        rest = lines.pop() ?? "";
        for (const line of lines) take(line);
      }
      take(rest);
    } finally {
      file.close();
    }
    summary.notable = summary.notable.map((line) => {
      const key = /"msg":"([^"]*)"/.exec(line)?.[1] ?? line.slice(0, 100);
      const count = seen.get(key) ?? 1;
      return count > 1 ? `${line}  (×${count})` : line;
    });
    return summary;
  }
}

/** Stops every process still running (signal handler and finally). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(2000)));
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a command to completion (in a namespace if given), with a hard timeout. */
export async function run(
  argv: string[],
  options: { ns?: string; timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<RunResult> {
  const full = inNamespace(argv, options.ns);
  const child = new Deno.Command(full[0], {
    args: full.slice(1),
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, options.timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr), timedOut };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** VmRSS of a process in kB (NaN once it is gone). */
export function rssKb(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Samples the RSS of some processes every `everyMs` until stopped; gives the peak of each. */
export function rssPeaks(pids: Record<string, number>, everyMs = 200): () => Record<string, number> {
  const peak: Record<string, number> = {};
  const sample = () => {
    for (const [name, pid] of Object.entries(pids)) {
      const kb = rssKb(pid);
      if (!Number.isNaN(kb)) peak[name] = Math.max(peak[name] ?? 0, kb);
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return () => {
    clearInterval(timer);
    sample();
    return peak;
  };
}
