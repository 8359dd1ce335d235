/** The tunnel protocol: message types, their codec, and framed reads/writes on streams. */
export * from "./messages.ts";
export { ProtocolError, type ProtocolErrorCode } from "./errors.ts";
export {
  decode,
  decodeFrameHeader,
  decodePayload,
  encode,
  encodePayload,
  typeNameOf,
  validate,
} from "./codec.ts";
export { MessageReader, sendErrorAndFinish } from "./stream_io.ts";
