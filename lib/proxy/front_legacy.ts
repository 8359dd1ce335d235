/**
 * Transitional: today's gateway (Web Request/Response handlers, raw upgrade sockets as Web streams)
 * served by the new raw fronts, so server.ts keeps working until the gateway takes a FrontHandler.
 * Delete this file with that change. Upgrades go raw only once the gateway's bytes start with a
 * 101 head; any other answer is sent as an HTTP response and the connection stays HTTP.
 */
import { type HeaderLine, latin1Bytes, latin1String, type RawDuplex } from "../protocol/body.ts";
import type { FrontHandler, FrontRequest, FrontResponse } from "./front_types.ts";
import { serveWeb, toWebRequest } from "./web_bridge.ts";

export interface RequestInfo {
  remoteAddr: string;
  proto: "http" | "https";
}

/** A raw upgraded connection: bytes from the browser and to it. */
export interface RawSocket {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
  /** Ends the connection at once. */
  destroy(): void;
}

export interface FrontHandlers {
  fetch(request: Request, info: RequestInfo): Response | Promise<Response>;
  /** An HTTP/1.1 Upgrade request (WebSocket); `request` has no body, the socket carries the rest. */
  upgrade(request: Request, socket: RawSocket, info: RequestInfo): void;
}

/** Adapts the old handler pair to a FrontHandler. */
export function legacyHandler(handlers: FrontHandlers): FrontHandler {
  return (request, response) => {
    const info = { remoteAddr: request.remoteAddr, proto: request.proto };
    if (request.upgrade) {
      return handlers.upgrade(toWebRequest(request), upgradeSocket(request, response), info);
    }
    serveWeb(request, response, (req) => handlers.fetch(req, info));
  };
}

function parseHead(head: string): { status: number; text: string; lines: HeaderLine[] } {
  const rows = head.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(rows[0]);
  if (!m) throw new Error("the gateway wrote no HTTP response head");
  const lines = rows.slice(1).filter((r) => r.length > 0).map((r): HeaderLine => {
    const c = r.indexOf(":");
    return [r.slice(0, c), r.slice(c + 1).trim()];
  });
  return { status: Number(m[1]), text: m[2], lines };
}

function upgradeSocket(request: FrontRequest, response: FrontResponse): RawSocket {
  let head = "";
  let raw: RawDuplex | null = null;
  let plain = false;
  let switched: () => void = () => {};
  const ready = new Promise<void>((r) => (switched = r));
  const destroy = () => {
    if (raw) raw.sink.abort();
    else if (response.headSent) response.body.abort();
    else {
      response.head(502, "Bad Gateway", [["Content-Length", "0"]]);
      response.body.end(null);
    }
  };
  request.onAbort(() => switched());
  const writeOut = (chunk: Uint8Array) =>
    new Promise<void>((resolve) => {
      const sink = raw ? raw.sink : response.body;
      if (sink.write(chunk)) resolve();
      else sink.onDrain(resolve);
    });
  const writable = new WritableStream<Uint8Array>({
    async write(chunk) {
      if (raw || plain) return writeOut(chunk);
      head += latin1String(chunk);
      const end = head.indexOf("\r\n\r\n");
      if (end === -1) return;
      const { status, text, lines } = parseHead(head.slice(0, end));
      const rest = latin1Bytes(head.slice(end + 4));
      if (status === 101) {
        raw = response.switchProtocols(text, lines);
        switched();
      } else {
        plain = true;
        response.head(status, text, lines.filter(([n]) => n.toLowerCase() !== "connection"));
      }
      if (rest.byteLength) await writeOut(rest);
    },
    close() {
      if (raw) raw.sink.end();
      else if (plain) response.body.end(null);
      else destroy();
    },
    abort: destroy,
  });
  const readable = new ReadableStream<Uint8Array>({
    async start(controller) {
      await ready;
      if (!raw) return controller.close();
      const source = (raw as RawDuplex).source;
      source.start({
        data(chunk) {
          controller.enqueue(chunk);
          if ((controller.desiredSize ?? 0) <= 0) source.pause();
        },
        end: () => controller.close(),
        error: (e) => controller.error(e),
      });
    },
    pull() {
      (raw as RawDuplex | null)?.source.resume();
    },
    cancel() {
      (raw as RawDuplex | null)?.source.cancel();
    },
  }, { highWaterMark: 4 });
  return { readable, writable, destroy };
}
