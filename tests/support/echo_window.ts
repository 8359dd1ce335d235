/**
 * Records 0..count-1 sent through an echoing peer with at most `window` unanswered at a time; what
 * has been unanswered for 300 ms without progress is sent again (UDP may drop under a burst, even on
 * loopback). The test's datagram handler reports each answer, then asks `next()` to go on.
 */
export interface EchoWindow {
  /** Indices answered so far. */
  readonly answered: Set<number>;
  /** An answer arrived (index `i`, or none for a record outside the numbered ones). */
  answer(i?: number): void;
  /** Sends more, or finishes once every index was answered and `alsoDone` holds. */
  next(alsoDone?: boolean): void;
  /** Starts sending; resolves when finished. */
  run(): Promise<void>;
}

export function echoWindow(count: number, send: (i: number) => void, window = 24): EchoWindow {
  const answered = new Set<number>();
  const outstanding = new Set<number>();
  let sent = 0;
  let lastProgress = Date.now();
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const pump = () => {
    while (sent < count && outstanding.size < window) {
      outstanding.add(sent);
      send(sent++);
    }
  };
  return {
    answered,
    answer(i) {
      lastProgress = Date.now();
      if (i === undefined) return;
      answered.add(i);
      outstanding.delete(i);
    },
    next(alsoDone = true) {
      if (answered.size === count && alsoDone) finish();
      else pump();
    },
    async run() {
      const resend = setInterval(() => {
        if (Date.now() - lastProgress > 300) { for (const i of outstanding) send(i); }
      }, 300);
      pump();
      try {
        await finished;
      } finally {
        clearInterval(resend);
      }
    },
  };
}
