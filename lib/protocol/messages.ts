/**
 * Tunnel message types. Every transport stream starts with exactly one framed message
 * (`type u8 | length u32 BE | payload`); a CONTROL stream carries framed messages only.
 */

/**
 * Version spoken by this build; HELLO carries it and the server rejects what it cannot serve.
 * 2 added PING/PONG on the CONTROL stream (the server's liveness probe while requests wait).
 */
export const PROTOCOL_VERSION = 2;
/** Oldest client protocol the server still serves (version 1 clients are never probed). */
export const MIN_PROTOCOL_VERSION = 1;
/** First version whose clients answer PING with PONG. */
export const PING_PROTOCOL_VERSION = 2;

/** Largest payload of one framed message (a request head with its headers included). */
export const MAX_PAYLOAD_BYTES = 64 * 1024;
/** Largest number of header lines in one head. */
export const MAX_HEADERS = 256;
/** Largest number of service prefixes a client may announce. */
export const MAX_SERVICES = 256;
/** Bytes in front of every payload: type (1) + length (4). */
export const FRAME_HEADER_BYTES = 5;

/** Wire type bytes. All are below 0x20, so none can start an HTTP/1.x status line ("H" = 0x48). */
export const MessageType = {
  HELLO: 0x01,
  WELCOME: 0x02,
  REJECT: 0x03,
  GOODBYE: 0x04,
  PING: 0x05,
  PONG: 0x06,
  REQUEST_HEAD: 0x10,
  UPGRADE_HEAD: 0x11,
  RESPONSE_HEAD: 0x12,
  ERROR: 0x13,
} as const;
export type MessageTypeName = keyof typeof MessageType;

/** One header line; repeated names stay separate lines, in order. */
export type HeaderLine = [name: string, value: string];

/** Client → server, first message on the CONTROL stream. */
export interface Hello {
  type: "HELLO";
  protocolVersion: number;
  clientVersion: string;
  /** Path prefixes the client serves; "/" at least. */
  services: string[];
}

/** Server → client: the session is live. */
export interface Welcome {
  type: "WELCOME";
  sessionId: string;
  domain: string;
  publicUrl: string;
}

/** Server → client: the session is refused; the connection closes after it. */
export interface Reject {
  type: "REJECT";
  code: string;
  message: string;
}

/** Either side, on CONTROL, just before closing. */
export interface Goodbye {
  type: "GOODBYE";
  reason: string;
}

/** Server → client, on CONTROL: are you there? The client answers PONG with the same seq. */
export interface Ping {
  type: "PING";
  seq: number;
}

/** Client → server, on CONTROL: the answer to PING. */
export interface Pong {
  type: "PONG";
  seq: number;
}

/** The fields shared by REQUEST_HEAD and UPGRADE_HEAD. */
export interface HeadFields {
  requestId: string;
  method: string;
  /** Path and query, starting with "/". */
  path: string;
  headers: HeaderLine[];
  remoteAddr: string;
  proto: "http" | "https";
  /** The public Host the browser asked for. */
  host: string;
  hasBody: boolean;
}

/** Server → client: an HTTP request; the body follows as raw bytes, then FIN. */
export interface RequestHead extends HeadFields {
  type: "REQUEST_HEAD";
}

/** Server → client: an HTTP/1.1 Upgrade; afterwards the stream is a raw byte pipe both ways. */
export interface UpgradeHead extends HeadFields {
  type: "UPGRADE_HEAD";
}

/** Client → server: the local service's answer; the body follows as raw bytes, then FIN. */
export interface ResponseHead {
  type: "RESPONSE_HEAD";
  /** 200..599: interim 1xx answers never cross the tunnel, 101 travels raw on an UPGRADE stream. */
  status: number;
  statusText: string;
  headers: HeaderLine[];
}

export const ERROR_CODES = ["local_unreachable", "local_error", "no_service", "bad_request"] as const;
export type TunnelErrorCode = typeof ERROR_CODES[number];

/** Client → server, instead of RESPONSE_HEAD (or instead of the raw upgrade answer). */
export interface ErrorMessage {
  type: "ERROR";
  code: TunnelErrorCode;
  message: string;
}

export type Message =
  | Hello
  | Welcome
  | Reject
  | Goodbye
  | Ping
  | Pong
  | RequestHead
  | UpgradeHead
  | ResponseHead
  | ErrorMessage;

/** Application error codes for TransportStream.reset. */
export const ResetCode = {
  /** The other side no longer wants the stream (browser went away, body cancelled). */
  CANCELLED: 0x01,
  /** No answer in time. */
  TIMEOUT: 0x02,
  /** A malformed message arrived. */
  PROTOCOL_ERROR: 0x03,
  /** The local service or the relay failed mid-stream. */
  INTERNAL: 0x04,
} as const;
