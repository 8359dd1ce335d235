/**
 * The transport's public face: a connection of reliable, ordered, flow-controlled byte streams
 * over one datagram session. Layers above (protocol, proxy) see only these types.
 */

/** What a stream's reader is handed, in order: chunks, then the end (FIN) or an error (reset, connection lost). */
export interface StreamConsumer {
  data(chunk: Uint8Array): void;
  end(): void;
  error(error: unknown): void;
}

/**
 * One bidirectional stream. Each half is used either through callbacks (the data path: no Web stream
 * objects) or through the Web stream built on them on first access, never both.
 */
export interface TransportStream {
  /** Stream id, unique within its connection. */
  readonly id: number;
  /** Starts pushing the peer's bytes to `consumer` (once). */
  read(consumer: StreamConsumer): void;
  /** Backpressure on reading: no chunk (and no credit for the peer) until resumeReading. */
  pauseReading(): void;
  resumeReading(): void;
  /** Stops reading: buffered bytes are dropped, the peer is asked to stop (STOP_SENDING with `code`). */
  stopReading(code: number): void;
  /**
   * Queues bytes for the peer, kept by reference until acknowledged (do not modify a chunk after
   * writing it); false when above what the peer's credit allows: wait for onDrain.
   */
  write(chunk: Uint8Array): boolean;
  onDrain(callback: () => void): void;
  /** Called once if the sending half fails (the peer's STOP_SENDING, a reset, the connection's end). */
  onWriteError(callback: (error: unknown) => void): void;
  /** Sends FIN after what was written. */
  finish(): void;
  /** Bytes from the peer; ends when the peer finishes (FIN); errors when the peer resets or the connection dies. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the peer, with backpressure; close() sends FIN. */
  readonly writable: WritableStream<Uint8Array>;
  /** Abandons the stream both ways (RESET_STREAM + STOP_SENDING) with an application error code. */
  reset(code: number): void;
  /** Resolves when both directions are finished or the stream was reset. */
  readonly done: Promise<void>;
}

export interface ConnectionStats {
  smoothedRttMs: number;
  minRttMs: number;
  congestionWindow: number;
  bytesInFlight: number;
  packetsSent: number;
  packetsLost: number;
  retransmittedFrames: number;
  maxDatagramSize: number;
  openStreams: number;
  /** Probe timeouts fired (RFC 9002 §6.2); optional so other implementations need not report it. */
  probeTimeouts?: number;
}

export interface ConnectionCloseInfo {
  /** "local" / "remote" close with a reason, "idle_timeout", or "session_closed" when the datagram session ended. */
  kind: "local" | "remote" | "idle_timeout" | "session_closed";
  code: number;
  reason: string;
}

/** A transport connection over one datagram session. */
export interface TransportConnection {
  /** Opens a new bidirectional stream (waits for stream credit when the peer's limit is reached). */
  openStream(): Promise<TransportStream>;
  /** Called for every stream the peer opens. */
  onStream(handler: (stream: TransportStream) => void): void;
  /** Graceful close: pending stream data is delivered first (bounded by a timeout), then CONNECTION_CLOSE. */
  close(code?: number, reason?: string): Promise<void>;
  /** Abrupt close: every open stream errors with the reason at once. */
  abort(code?: number, reason?: string): void;
  /** Resolves once when the connection ends. */
  readonly closed: Promise<ConnectionCloseInfo>;
  stats(): ConnectionStats;
}
