/**
 * Debian's headless Chromium driven over the DevTools protocol (CDP): open a page, evaluate
 * expressions in it, take a screenshot. No test framework in between: the real browser, a WebSocket.
 */

import { eventually, sleep } from "./wait.ts";
import { makeScratchDir } from "./scratch.ts";

export interface Browser {
  /** Evaluates an expression in the page (awaiting promises) and returns its JSON value. */
  evaluate<T = unknown>(expression: string): Promise<T>;
  /** Polls `expression` until it is truthy; returns the ms it took. */
  waitFor(expression: string, timeoutMs?: number, what?: string): Promise<number>;
  /** Writes a PNG of the page. */
  screenshot(path: string): Promise<void>;
  close(): Promise<void>;
}

/** Starts Chromium on `url`. */
export async function openBrowser(
  url: string,
  options: { width?: number; height?: number } = {},
): Promise<Browser> {
  const profile = await makeScratchDir("hopgate-chromium-");
  const child = new Deno.Command("chromium", {
    args: [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-dev-shm-usage",
      "--remote-debugging-address=127.0.0.1",
      "--remote-debugging-port=0",
      `--user-data-dir=${profile}`,
      `--window-size=${options.width ?? 1280},${options.height ?? 800}`,
      url,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let closed = false;
  const stop = async () => {
    if (closed) return;
    closed = true;
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 3000);
    await child.status;
    clearTimeout(timer);
    // Chromium's helper processes can still write to the profile for a moment after it exits.
    for (let i = 0; i < 10; i++) {
      try {
        await Deno.remove(profile, { recursive: true });
        break;
      } catch {
        await sleep(100);
      }
    }
  };
  try {
    const port = await devtoolsPort(child.stderr, 20_000);
    const page = await pageTarget(port, 10_000);
    const ws = new WebSocket(page);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error("cannot open the DevTools WebSocket"));
    });
    let nextId = 1;
    const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
    ws.onmessage = (e) => {
      const msg = JSON.parse(String(e.data));
      const p = pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`CDP: ${msg.error.message}`));
      else p.resolve(msg.result);
    };
    const send = (method: string, params: Record<string, unknown> = {}) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve: (v) => resolve(v as Record<string, unknown>), reject });
        ws.send(JSON.stringify({ id, method, params }));
      });
    const evaluate = async <T>(expression: string): Promise<T> => {
      const r = await send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true });
      if (r.exceptionDetails) throw new Error(`page threw: ${JSON.stringify(r.exceptionDetails)}`);
      return (r.result as { value: T }).value;
    };
    return {
      evaluate,
      async waitFor(expression, timeoutMs = 5000, what = expression) {
        const start = performance.now();
        const truthy = () => evaluate<boolean>(`!!(${expression})`).catch(() => false);
        await eventually(truthy, what, timeoutMs, 20);
        return performance.now() - start;
      },
      async screenshot(path) {
        const r = await send("Page.captureScreenshot", { format: "png" });
        await Deno.writeFile(path, Uint8Array.from(atob(String(r.data)), (c) => c.charCodeAt(0)));
      },
      async close() {
        try {
          ws.close();
        } catch { /* closed */ }
        await stop();
      },
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Reads "DevTools listening on ws://127.0.0.1:PORT/..." from Chromium's stderr. */
async function devtoolsPort(stderr: ReadableStream<Uint8Array>, timeoutMs: number): Promise<number> {
  const reader = stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const timer = setTimeout(() => reader.cancel(), timeoutMs);
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`chromium gave no DevTools address; stderr:\n${seen}`);
      seen += value;
      const m = /DevTools listening on ws:\/\/[^:]+:(\d+)\//.exec(seen);
      if (m) {
        // Keep draining stderr so Chromium never blocks on a full pipe.
        (async () => {
          try {
            while (!(await reader.read()).done) { /* drain */ }
          } catch { /* closed */ }
        })();
        return Number(m[1]);
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

async function pageTarget(port: number, timeoutMs: number): Promise<string> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as {
      type: string;
      webSocketDebuggerUrl: string;
    }[];
    const page = list.find((t) => t.type === "page");
    if (page) return page.webSocketDebuggerUrl;
    await sleep(100);
  }
  throw new Error("chromium opened no page");
}
