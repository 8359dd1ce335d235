/**
 * What the client's forwarder shows an observer of its exchanges (the request inspector): the request
 * as sent to the local service, then bodies and the answer as they pass. Observing never changes what
 * is forwarded.
 */
import type { HeaderLine } from "../protocol/body.ts";

export interface ExchangeObserver {
  begin(info: {
    requestId: string;
    method: string;
    /** Byte string. */
    target: string;
    headers: HeaderLine[];
    localUrl: string;
  }): ExchangeCapture;
}

export interface ExchangeCapture {
  requestBody(chunk: Uint8Array): void;
  response(status: number, statusText: string, headers: HeaderLine[]): void;
  responseBody(chunk: Uint8Array): void;
  end(info: { error?: string }): void;
}
