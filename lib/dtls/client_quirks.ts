/**
 * Repairs to node-dtls-client 2.0.3's receive-side anti-replay window, applied once per process.
 *
 * Its AntiReplayWindow (64 entries) refuses every record more than 64 ahead of the highest seen
 * ("we skipped a lot of packets"), so a burst of 65 lost datagrams from the server leaves the
 * client deaf for the rest of the session; and a jump of exactly 32 shifts by `>>> 32`, a no-op in
 * JavaScript, which corrupts the bitmap for records that arrive out of order. The package exports no way to replace the
 * class, so we reach its prototype through a live socket and route its three methods to our own
 * RFC 6347 §4.1.2.6 window. Only our adapter uses the library, so the process-wide patch is ours.
 */
import { ReplayWindow } from "./replay_window.ts";

interface LibraryWindow {
  mayReceive(seq: number): boolean;
  markAsReceived(seq: number): void;
  reset(): void;
}

const OURS = Symbol("hopgate.replayWindow");
let patched = false;

/** Patches the library's window class, found through a socket whose record layer exists. */
export function repairReplayWindow(socket: unknown): boolean {
  if (patched) return true;
  const recordLayer = (socket as { recordLayer?: { epochs?: Array<{ antiReplayWindow?: LibraryWindow }> } })
    .recordLayer;
  const sample = recordLayer?.epochs?.[0]?.antiReplayWindow;
  if (sample === undefined) return false;
  const proto = Object.getPrototypeOf(sample) as LibraryWindow;
  type Patched = LibraryWindow & { [OURS]?: ReplayWindow };
  const windowOf = (w: Patched) => (w[OURS] ??= new ReplayWindow());
  proto.mayReceive = function (this: Patched, seq: number) {
    return windowOf(this).mayAccept(seq);
  };
  proto.markAsReceived = function (this: Patched, seq: number) {
    windowOf(this).accept(seq);
  };
  proto.reset = function (this: Patched) {
    this[OURS] = new ReplayWindow();
  };
  patched = true;
  return true;
}

/** The window our patch keeps for a library epoch (its accepted records), or undefined if unpatched. */
export function libraryReplayWindow(libraryWindow: unknown): ReplayWindow | undefined {
  if (typeof libraryWindow !== "object" || libraryWindow === null) return undefined;
  const w = (libraryWindow as { [OURS]?: ReplayWindow })[OURS];
  return w instanceof ReplayWindow ? w : undefined;
}
