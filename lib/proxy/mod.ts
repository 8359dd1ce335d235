/**
 * The proxy layer: server side (route a request to a session, forward it over a stream) and
 * client side (serve a stream against local services).
 */
export {
  type RouteResult,
  type SessionCountListener,
  SessionRegistry,
  type TunnelSession,
} from "./registry.ts";
export {
  acceptControl,
  type AcceptResult,
  type ControlChannel,
  HandshakeRejectedError,
  type HelloVerdict,
  openControl,
} from "./control.ts";
export { forwardHttp, type ForwardOptions } from "./server_forward.ts";
export {
  type ByteDuplex,
  forwardUpgrade,
  rawHttpResponse,
  type UpgradeRequest,
  type UpgradeResult,
} from "./server_upgrade.ts";
export { handleStream, type HandleStreamOptions, localAcceptEncoding } from "./client_forward.ts";
export {
  type HostMode,
  type LocalService,
  localUrl,
  pickService,
  type ServedRequest,
} from "./local_target.ts";
export {
  TunnelAbortedError,
  TunnelDroppedError,
  TunnelError,
  TunnelLocalError,
  TunnelOfflineError,
  TunnelProtocolError,
  TunnelTimeoutError,
} from "./errors.ts";
export { tunnelErrorResponse } from "./error_response.ts";
export { longestPrefix, prefixCovers } from "./prefix.ts";
export { dropHopByHop, requestHeaderLines } from "./headers.ts";
