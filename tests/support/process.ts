/** Starting HopGate entrypoints as real processes, reading their JSON log lines. */

const ROOT = new URL("../../", import.meta.url);

export interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

export interface RunningProcess {
  child: Deno.ChildProcess;
  /** Every JSON line printed so far. */
  lines: LogLine[];
  /** Everything printed on stderr so far. */
  stderr: () => string;
  /** Resolves with the first line matching, or rejects after timeoutMs. */
  waitFor(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** SIGTERM (or the given signal), then wait for exit. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  status: Promise<Deno.CommandStatus>;
}

let sharedCwd: string | undefined;
/** An empty working directory, so no developer's .env is picked up. */
function defaultCwd(): string {
  return sharedCwd ??= Deno.makeTempDirSync({ prefix: "hopgate-cwd-" });
}

/**
 * V8 flags an entrypoint ships with: `deno task server` and the compiled server keep PGlite's WebAssembly at
 * its baseline tier (--liftoff-only), which also spares each test server's start the optimising compile.
 */
const ENTRY_FLAGS: Record<string, string[]> = { "server.ts": ["--v8-flags=--liftoff-only"] };

/** Runs `deno run -A <entry> ...args` with the given environment (on top of a clean one). */
export function startProcess(
  entry: string,
  args: string[],
  env: Record<string, string>,
  cwd = defaultCwd(),
  /** deno run flags before the entry, e.g. the client task's --no-code-cache. */
  denoFlags: string[] = [],
): RunningProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...(ENTRY_FLAGS[entry] ?? []),
      ...denoFlags,
      "--config",
      new URL("deno.json", ROOT).pathname,
      new URL(entry, ROOT).pathname,
      ...args,
    ],
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      NO_COLOR: "1",
      ...env,
    },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    cwd,
  }).spawn();
  const lines: LogLine[] = [];
  const waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  let err = "";
  const pump = async (stream: ReadableStream<Uint8Array>, onLine: (s: string) => void) => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        onLine(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    }
    if (buf) onLine(buf);
  };
  const outDone = pump(child.stdout, (s) => {
    let line: LogLine;
    try {
      line = JSON.parse(s);
    } catch {
      line = { level: "text", msg: s };
    }
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.match(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  const errDone = pump(child.stderr, (s) => (err += s + "\n"));
  const status = Promise.all([child.status, outDone, errDone]).then(([s]) => s);
  return {
    child,
    lines,
    stderr: () => err,
    status,
    waitFor(match, timeoutMs = 20_000) {
      const found = lines.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(
            new Error(
              `no matching log line within ${timeoutMs} ms; stderr:\n${err}\nstdout:\n${
                lines.map((l) => JSON.stringify(l)).join("\n")
              }`,
            ),
          );
        }, timeoutMs);
        const w = {
          match,
          resolve: (l: LogLine) => {
            clearTimeout(timer);
            resolve(l);
          },
        };
        waiters.push(w);
        status.then(() => {
          if (waiters.includes(w)) {
            clearTimeout(timer);
            reject(new Error(`process exited before a matching line; stderr:\n${err}`));
          }
        });
      });
    },
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      return await status;
    },
  };
}

/** Runs an entrypoint to completion and returns its exit code and output. */
export async function runToEnd(entry: string, args: string[], env: Record<string, string>) {
  const p = startProcess(entry, args, env);
  const status = await p.status;
  return {
    code: status.code,
    stdout: p.lines.map((l) => (l.level === "text" ? l.msg : JSON.stringify(l))).join("\n"),
    stderr: p.stderr(),
  };
}

/** Runs `deno <args>` with `stdin` written to it; its exit code and output. */
export async function runDenoWithInput(
  args: string[],
  stdin: string,
  env?: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    ...(env ? { env, clearEnv: true } : {}),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs a Deno script given as text (on stdin) with the given permission flags. */
export function runDenoScript(
  script: string,
  flags: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runDenoWithInput(["run", ...flags, "-"], script);
}
