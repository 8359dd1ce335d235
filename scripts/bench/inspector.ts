/**
 * A measured process's own view of its memory, through the V8 inspector it was started with
 * (`deno run --inspect=127.0.0.1:PORT`): a full garbage collection on demand, Deno.memoryUsage()
 * after it, and heap snapshots. Nothing in the measured program changes for this.
 */

export interface MemoryUsage {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
}

export interface Inspector {
  /** Full GC (HeapProfiler.collectGarbage), twice: weak callbacks of the first free more. */
  gc(): Promise<void>;
  memory(): Promise<MemoryUsage>;
  /** Writes a .heapsnapshot (Chrome DevTools format) to `path`. */
  snapshot(path: string): Promise<void>;
  /** Records a CPU profile for `ms` and writes it (.cpuprofile, for profile_summary.ts) to `path`. */
  profile(path: string, ms: number): Promise<void>;
  close(): void;
}

/** Connects to the inspector on 127.0.0.1:port (retries until it answers, up to `timeoutMs`). */
export async function connectInspector(port: number, timeoutMs = 10_000): Promise<Inspector> {
  const end = Date.now() + timeoutMs;
  let url: string | undefined;
  while (url === undefined) {
    try {
      const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
      url = list[0]?.webSocketDebuggerUrl;
    } catch (e) {
      if (Date.now() > end) throw new Error(`no inspector on 127.0.0.1:${port}: ${(e as Error).message}`);
    }
    if (url === undefined) await new Promise((r) => setTimeout(r, 100));
  }
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`inspector websocket ${url} failed`));
  });
  let id = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let onEvent: ((method: string, params: Record<string, unknown>) => void) | null = null;
  ws.onmessage = (m) => {
    const msg = JSON.parse(String(m.data));
    if (msg.id !== undefined) {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) p?.reject(new Error(`inspector: ${msg.error.message}`));
      else p?.resolve(msg.result);
    } else onEvent?.(msg.method, msg.params);
  };
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const n = ++id;
      pending.set(n, { resolve: resolve as (v: unknown) => void, reject });
      ws.send(JSON.stringify({ id: n, method, params }));
    });
  await call("Runtime.enable");
  return {
    async gc() {
      await call("HeapProfiler.collectGarbage");
      await call("HeapProfiler.collectGarbage");
    },
    async memory() {
      const r = await call("Runtime.evaluate", {
        expression: "JSON.stringify(Deno.memoryUsage())",
        returnByValue: true,
      });
      return JSON.parse((r.result as { value: string }).value);
    },
    async snapshot(path) {
      const chunks: string[] = [];
      onEvent = (method, params) => {
        if (method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(String(params.chunk));
      };
      try {
        await call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
      } finally {
        onEvent = null;
      }
      await Deno.writeTextFile(path, chunks.join(""));
    },
    async profile(path, ms) {
      await call("Profiler.enable");
      await call("Profiler.start");
      await new Promise((r) => setTimeout(r, ms));
      const { profile } = await call("Profiler.stop");
      await Deno.writeTextFile(path, JSON.stringify(profile));
    },
    close() {
      ws.close();
    },
  };
}
