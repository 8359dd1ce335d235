/**
 * Client side of an UPGRADE stream: open TCP to the local service, write the HTTP/1.1
 * upgrade request ourselves, then relay raw bytes both ways. The local 101 answer and every
 * WebSocket frame after it pass through untouched (text, binary, ping/pong, close codes).
 */
import { type Clock, systemClock } from "../log/clock.ts";
import type { Logger } from "../log/logger.ts";
import { type MessageReader, ResetCode, sendErrorAndFinish, type UpgradeHead } from "../protocol/mod.ts";
import type { TransportStream } from "../transport/types.ts";
import {
  type HostMode,
  localHost,
  type LocalService,
  localUrl,
  pickService,
  type ServedRequest,
  servedRequestReporter,
  withoutHeaders,
} from "./local_target.ts";

export interface RelayOptions {
  services: readonly LocalService[];
  hostMode: HostMode;
  logger: Logger;
  onRequest?(info: ServedRequest): void;
  clock?: Clock;
}

const encoder = new TextEncoder();

/** The raw HTTP/1.1 request bytes for an upgrade head. */
export function upgradeRequestBytes(head: UpgradeHead, target: URL, host: string): Uint8Array {
  const lines = [`${head.method} ${target.pathname}${target.search} HTTP/1.1`, `host: ${host}`];
  for (const [n, v] of withoutHeaders(head.headers, new Set(["host"]))) lines.push(`${n}: ${v}`);
  return encoder.encode(lines.join("\r\n") + "\r\n\r\n");
}

async function connectLocal(target: URL): Promise<Deno.Conn> {
  const hostname = target.hostname.replace(/^\[|\]$/g, "");
  if (target.protocol === "https:" || target.protocol === "wss:") {
    return await Deno.connectTls({ hostname, port: Number(target.port || 443) });
  }
  return await Deno.connect({ hostname, port: Number(target.port || 80) });
}

/** The status code of the first bytes of an HTTP/1.x answer, or 0. */
function statusOf(chunk: Uint8Array): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(new TextDecoder().decode(chunk.subarray(0, 16)));
  return m ? Number(m[1]) : 0;
}

/** Relays one UPGRADE stream to the local service; resolves when both directions are done. */
export async function relayUpgrade(
  stream: TransportStream,
  head: UpgradeHead,
  reader: MessageReader,
  opts: RelayOptions,
): Promise<void> {
  const clock = opts.clock ?? systemClock;
  const { info, report } = servedRequestReporter(head, true, clock, opts.onRequest);
  const log = opts.logger.child({ request_id: head.requestId });

  const service = pickService(opts.services, head.path);
  if (!service) {
    await reader.cancel();
    await sendErrorAndFinish(
      stream.writable,
      "no_service",
      `no local service is configured for ${head.path}`,
    );
    return report({ status: 404, error: "no_service" });
  }
  const target = localUrl(service, head.path);
  let conn: Deno.Conn;
  try {
    conn = await connectLocal(target);
  } catch (e) {
    const message = `${target.host}: ${(e as Error).message}`;
    log.warn({ path: head.path, err: message }, "local service unreachable for upgrade");
    await reader.cancel();
    await sendErrorAndFinish(stream.writable, "local_unreachable", message);
    return report({ status: 502, error: "local_unreachable" });
  }

  const up = (async () => {
    await conn.write(upgradeRequestBytes(head, target, localHost(opts.hostMode, head.host, service.target)));
    const rest = reader.rest().getReader();
    for (;;) {
      const { done, value } = await rest.read();
      if (done) break;
      info.bytesIn += value.length;
      let off = 0;
      while (off < value.length) off += await conn.write(value.subarray(off));
    }
    await conn.closeWrite();
  })();

  const down = (async () => {
    const writer = stream.writable.getWriter();
    const local = conn.readable.getReader();
    for (;;) {
      const { done, value } = await local.read();
      if (done) break;
      if (info.status === 0) info.status = statusOf(value);
      info.bytesOut += value.length;
      await writer.write(value);
    }
    await writer.close();
  })();

  const results = await Promise.allSettled([
    up.catch((e) => {
      // The tunnel side failed (reset): drop the local connection too.
      try {
        conn.close();
      } catch { /* already closed */ }
      throw e;
    }),
    down.catch((e) => {
      stream.reset(ResetCode.INTERNAL);
      throw e;
    }),
  ]);
  try {
    conn.close();
  } catch { /* already closed */ }
  const failed = results.find((r) => r.status === "rejected");
  if (failed) {
    log.debug({ err: String((failed as PromiseRejectedResult).reason) }, "upgrade relay ended with an error");
  }
  report(failed ? { error: "reset" } : {});
}
