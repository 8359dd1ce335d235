/** A malformed or refused HTTP/1.1 message, carrying the status the front answers before closing. */
export class HttpError extends Error {
  constructor(readonly status: 400 | 413 | 414 | 431 | 501 | 505, message: string) {
    super(message);
    this.name = "HttpError";
  }
}

/** The reason phrases of the statuses the front answers on its own. */
export const STATUS_TEXT: Record<number, string> = {
  100: "Continue",
  101: "Switching Protocols",
  400: "Bad Request",
  408: "Request Timeout",
  413: "Content Too Large",
  414: "URI Too Long",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};
