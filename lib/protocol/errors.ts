/** Why a tunnel message was refused by the codec or the framing reader. */
export type ProtocolErrorCode =
  | "truncated"
  | "too_large"
  | "unknown_type"
  | "unexpected_type"
  | "invalid_varint"
  | "invalid_utf8"
  | "invalid_field"
  | "trailing_bytes"
  | "stream_ended";

/** A malformed or unexpected tunnel message; `code` says which rule was broken. */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  constructor(readonly code: ProtocolErrorCode, message: string) {
    super(message);
  }
}
