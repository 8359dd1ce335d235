/**
 * Tunnel message types, each framed as `type u8 | length u32 BE | payload`. A CONTROL stream carries
 * framed messages only. A request stream carries, each way, one head (REQUEST_HEAD / UPGRADE_HEAD one
 * way, RESPONSE_HEAD or ERROR back), then the body as DATA messages, then at most one TRAILERS, then
 * FIN. After a 101 RESPONSE_HEAD on an UPGRADE stream, both directions carry raw bytes.
 */
import type { HeaderLine } from "./body.ts";

export type { HeaderLine };

/**
 * Version spoken by this build; HELLO carries it and the server rejects what it cannot serve.
 * 2 added PING/PONG on the CONTROL stream (the server's liveness probe while requests wait).
 */
export const PROTOCOL_VERSION = 3;
/**
 * Oldest client protocol the server still serves. 3 made request streams byte-faithful (heads as byte
 * strings with the raw request target, DATA and TRAILERS messages, 101 forwarded as a head): a v2
 * client's raw bodies cannot be read as v3, so it is refused with a clear REJECT.
 */
export const MIN_PROTOCOL_VERSION = 3;
/** First version whose clients answer PING with PONG. */
export const PING_PROTOCOL_VERSION = 2;

/** Largest payload of one framed message other than DATA (a head with its headers included). */
export const MAX_PAYLOAD_BYTES = 512 * 1024;
/** Largest DATA payload: DATA is streamed through, never buffered whole. */
export const MAX_DATA_BYTES = 16 * 1024 * 1024;
/** Largest number of header (or trailer) lines in one message. */
export const MAX_HEADERS = 8192;
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
  DATA: 0x14,
  TRAILERS: 0x15,
} as const;
export type MessageTypeName = keyof typeof MessageType;

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
  /** The request-target as the browser sent it (a byte string: raw UTF-8 stays raw). */
  target: string;
  /** Header lines as the browser sent them (byte strings, names' case kept), minus hop-by-hop, plus X-Forwarded-*. */
  headers: HeaderLine[];
  remoteAddr: string;
  proto: "http" | "https";
  /** The public Host the browser asked for. */
  host: string;
  /** DATA (or TRAILERS) follow the head; false: FIN follows at once (UPGRADE_HEAD: raw bytes after a 101). */
  hasBody: boolean;
}

/** Server → client: an HTTP request; its body follows as DATA, then TRAILERS if any, then FIN. */
export interface RequestHead extends HeadFields {
  type: "REQUEST_HEAD";
}

/** Server → client: an HTTP/1.1 Upgrade; after a 101 answer the stream is a raw byte pipe both ways. */
export interface UpgradeHead extends HeadFields {
  type: "UPGRADE_HEAD";
}

/** Client → server: the local service's answer; its body follows as DATA, then TRAILERS, then FIN. */
export interface ResponseHead {
  type: "RESPONSE_HEAD";
  /** 101 (UPGRADE streams only) or 200..599: other interim answers never cross the tunnel. */
  status: number;
  /** Byte string. */
  statusText: string;
  headers: HeaderLine[];
}

/** Either way: body bytes (the payload is the bytes). */
export interface DataMessage {
  type: "DATA";
  data: Uint8Array;
}

/** Either way: the body's trailer lines, after the last DATA. */
export interface Trailers {
  type: "TRAILERS";
  trailers: HeaderLine[];
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
  | DataMessage
  | Trailers
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
