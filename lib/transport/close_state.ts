/** Where a connection is in its life, as one value rather than a bag of flags. */
import { ConnectionClosedError } from "./errors.ts";
import type { ConnectionCloseInfo } from "./types.ts";

/**
 * `closing`: close() was called, streams deliver what is pending (bounded by `deadline`), then
 * CONNECTION_CLOSE goes out. `closed`: ended, with why; `closeCode` is what close() was called with (0 if
 * never), which later openStream() errors report.
 */
export type CloseState =
  | { readonly phase: "open" }
  | { readonly phase: "closing"; readonly code: number; readonly reason: string; readonly deadline: number }
  | { readonly phase: "closed"; readonly info: ConnectionCloseInfo; readonly closeCode: number };

export const OPEN: CloseState = { phase: "open" };

/** The closed state reached from `prior` for `info`. */
export function closedState(prior: CloseState, info: ConnectionCloseInfo): CloseState {
  return { phase: "closed", info, closeCode: prior.phase === "closing" ? prior.code : 0 };
}

/** What openStream() and stream-credit waiters get once the connection is no longer open. */
export function notOpenError(state: CloseState): ConnectionClosedError {
  const code = state.phase === "closing" ? state.code : state.phase === "closed" ? state.closeCode : 0;
  return new ConnectionClosedError({ kind: "local", code, reason: "connection is closing" });
}
