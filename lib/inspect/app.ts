/**
 * The inspector's web app (Hono): the page at /, a JSON API for scripts under /api, and live updates
 * as server-sent events at /api/events.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { HeaderLine } from "../protocol/body.ts";
import type { CaptureStore, Exchange, ExchangeEvent } from "./capture.ts";
import { viewBody } from "./display.ts";
import { INSPECTOR_PAGE } from "./page.ts";
import { ReplayError, replayExchange } from "./replay.ts";

/** One line of the list. */
export function summary(x: Exchange) {
  return {
    id: x.id,
    request_id: x.requestId,
    started_at: new Date(x.startedAt).toISOString(),
    method: x.method,
    path: x.target,
    status: x.status,
    status_text: x.statusText,
    duration_ms: x.durationMs === null ? null : Math.round(x.durationMs * 10) / 10,
    request_bytes: x.requestBody.total,
    response_bytes: x.responseBody.total,
    done: x.done,
    error: x.error ?? null,
    replay_of: x.replayOf ?? null,
    local_url: x.localUrl,
  };
}

/** The full view of one exchange: headers and displayable bodies. */
export function detail(x: Exchange) {
  return {
    ...summary(x),
    request: { headers: x.requestHeaders, body: viewBody(x.requestBody, x.requestHeaders) },
    response: { headers: x.responseHeaders, body: viewBody(x.responseBody, x.responseHeaders) },
  };
}

const headerLines = z.union([
  z.array(z.tuple([z.string().min(1), z.string()])),
  z.record(z.string().min(1), z.string()).transform((o) => Object.entries(o) as HeaderLine[]),
]);

const replayBody = z.strictObject({
  method: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "method must be an HTTP token, e.g. POST")
    .optional(),
  path: z.string().regex(/^\/[^\s]*$/, "path must start with / and hold no spaces, e.g. /api?x=1").optional(),
  headers: headerLines.optional(),
  body: z.string().optional(),
  body_base64: z.string().optional(),
}).refine((b) => b.body === undefined || b.body_base64 === undefined, "give body or body_base64, not both");

const SSE_KEEPALIVE_MS = 15_000;

export interface InspectorApp {
  app: Hono;
  /** Ends the live event streams (so the listener can shut down). */
  closeStreams(): void;
}

/** Host names the inspector answers to: a page on another name reaching 127.0.0.1 is DNS rebinding. */
const LOCAL_HOST = /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\]|\[::ffff:127(?:\.\d{1,3}){3}\])(?::\d+)?$/i;

/** Builds the app over a capture store. */
export function createInspectorApp(store: CaptureStore): InspectorApp {
  const app = new Hono();
  const streams = new Set<() => void>();

  // Captured requests hold cookies and tokens, and replay reaches the local service: only the
  // inspector's own page may use the API, not any web site the developer happens to have open.
  app.use("*", async (c, next) => {
    const host = c.req.header("host") ?? "";
    if (!LOCAL_HOST.test(host)) {
      return c.json({
        error: { code: "forbidden_host", message: `open the inspector as http://127.0.0.1, not ${host}` },
      }, 403);
    }
    if (c.req.method !== "GET" && c.req.method !== "HEAD") {
      const origin = c.req.header("origin");
      if (origin !== undefined && origin !== `http://${host}`) {
        return c.json(
          { error: { code: "forbidden_origin", message: `requests from ${origin} are refused` } },
          403,
        );
      }
      // JSON only: a cross-site form or text/plain POST cannot send it without a CORS preflight.
      if (!/^application\/json\b/i.test(c.req.header("content-type") ?? "")) {
        return c.json({
          error: { code: "unsupported_media_type", message: "send Content-Type: application/json" },
        }, 415);
      }
    }
    await next();
  });

  app.get("/", (c) => c.html(INSPECTOR_PAGE));
  app.get("/api/requests", (c) => c.json({ requests: store.list().map(summary) }));
  app.get("/api/requests/:id", (c) => {
    const x = store.get(Number(c.req.param("id")));
    if (!x) {
      return c.json(
        { error: { code: "not_found", message: "no such exchange (dropped or never captured)" } },
        404,
      );
    }
    return c.json(detail(x));
  });
  app.post("/api/requests/:id/replay", async (c) => {
    const x = store.get(Number(c.req.param("id")));
    if (!x) {
      return c.json(
        { error: { code: "not_found", message: "no such exchange (dropped or never captured)" } },
        404,
      );
    }
    const text = await c.req.text();
    let raw: unknown = {};
    try {
      raw = text.trim() ? JSON.parse(text) : {};
    } catch {
      return c.json({ error: { code: "invalid_body", message: "the body must be JSON" } }, 400);
    }
    const parsed = replayBody.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue.path.length ? `${issue.path.join(".")}: ` : "";
      return c.json({ error: { code: "invalid_body", message: `${where}${issue.message}` } }, 400);
    }
    const e = parsed.data;
    const body = e.body_base64 !== undefined
      ? Uint8Array.from(atob(e.body_base64), (ch) => ch.charCodeAt(0))
      : e.body !== undefined
      ? new TextEncoder().encode(e.body)
      : undefined;
    try {
      const id = await replayExchange(store, x, {
        method: e.method,
        target: e.path,
        headers: e.headers,
        body,
      });
      const replayed = store.get(id);
      return c.json({ id, original: summary(x), replay: replayed ? detail(replayed) : null });
    } catch (err) {
      if (err instanceof ReplayError) {
        return c.json({ error: { code: "replay_failed", message: err.message } }, 502);
      }
      throw err;
    }
  });
  app.get("/api/events", () => {
    const encoder = new TextEncoder();
    let stop = () => {};
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        const send = (s: string) => {
          try {
            controller.enqueue(encoder.encode(s));
          } catch { /* closed */ }
        };
        const unsubscribe = store.subscribe((e: ExchangeEvent) => {
          if (e.type === "update") send(`event: exchange\ndata: ${JSON.stringify(summary(e.exchange))}\n\n`);
          else send(`event: dropped\ndata: ${JSON.stringify({ id: e.id })}\n\n`);
        });
        const keepalive = setInterval(() => send(": keep-alive\n\n"), SSE_KEEPALIVE_MS);
        stop = () => {
          unsubscribe();
          clearInterval(keepalive);
          streams.delete(stop);
          try {
            controller.close();
          } catch { /* already closed */ }
        };
        streams.add(stop);
        // retry: a restarted client is found again within a second.
        send("retry: 1000\n: connected\n\n");
      },
      cancel() {
        stop();
      },
    });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
      },
    });
  });
  return {
    app,
    closeStreams() {
      for (const s of [...streams]) s();
    },
  };
}
