/**
 * The renewal schedule in simulated time: when certificates are ordered, how failures back off, and
 * how many orders run at once. The orders themselves are stubs the test settles.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { ManualClock } from "./support/manual_clock.ts";
import { isDue, renewalTime, retryDelay } from "../lib/tls/renewal.ts";
import {
  type CertificateFacts,
  createRenewalScheduler,
  type RenewOutcome,
  type SchedulerOptions,
} from "../lib/tls/renewal_scheduler.ts";

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);

/** A 90-day certificate issued at `at` (epoch ms). */
const cert90 = (at: number, serial = "01"): CertificateFacts => ({
  serial,
  notBefore: at,
  notAfter: at + 90 * DAY,
});

interface Call {
  hostname: string;
  forced: boolean;
  settle(outcome: RenewOutcome | Error): void;
}

/** A scheduler on a manual clock whose orders wait until the test settles them. */
function harness(options: Partial<SchedulerOptions> = {}) {
  const clock = new ManualClock();
  const now = () => T0 + clock.now();
  const calls: Call[] = [];
  const scheduler = createRenewalScheduler({
    clock,
    now,
    random: () => 0.5,
    renewalSpreadMs: 0,
    renew: (hostname, forced) =>
      new Promise((resolve, reject) => {
        calls.push({ hostname, forced, settle: (o) => (o instanceof Error ? reject(o) : resolve(o)) });
      }),
    ...options,
  });
  /** Moves simulated time and lets settled orders' continuations run. */
  const advance = async (ms: number) => {
    clock.advance(ms);
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  const flush = () => advance(0);
  return { clock, now, calls, scheduler, advance, flush };
}

Deno.test("renewal: a 90-day certificate is due 30 days before it expires", () => {
  const c = cert90(T0);
  assertEquals(renewalTime(c), T0 + 60 * DAY);
  assertEquals(isDue(c, T0 + 60 * DAY - 1), false);
  assertEquals(isDue(c, T0 + 60 * DAY), true);
  // A third of the lifetime whatever the lifetime: 6-day certificates renew with 2 days left.
  assertEquals(renewalTime({ notBefore: T0, notAfter: T0 + 6 * DAY }), T0 + 4 * DAY);
});

Deno.test("renewal: retry delays double from one minute, are capped at six hours and jittered ±20%", () => {
  assertEquals(retryDelay(1, () => 0.5), 60_000);
  assertEquals(retryDelay(2, () => 0.5), 120_000);
  assertEquals(retryDelay(20, () => 0.5), 6 * 3_600_000);
  assertEquals(retryDelay(1, () => 0), 48_000);
  assertEquals(retryDelay(1, () => 1), 72_000);
});

Deno.test("renewal: a host without a certificate is ordered at once", async () => {
  const h = harness();
  h.scheduler.track("app.example.io");
  await h.flush();
  assertEquals(h.calls.map((c) => [c.hostname, c.forced]), [["app.example.io", false]]);
  assertEquals(h.scheduler.state("app.example.io")?.status, "ordering");
  h.calls[0].settle({ kind: "issued", cert: cert90(h.now()) });
  await h.flush();
  const s = h.scheduler.state("app.example.io")!;
  assertEquals([s.status, s.issued, s.serial], ["issued", true, "01"]);
  assertEquals(s.next_renewal, new Date(T0 + 60 * DAY).toISOString());
  h.scheduler.close();
});

Deno.test("renewal: a valid certificate is renewed at its renewal time and not before", async () => {
  const h = harness();
  h.scheduler.track("app.example.io", cert90(T0 - 10 * DAY));
  await h.advance(50 * DAY - 60_000);
  assertEquals(h.calls.length, 0, "not due yet (and long sleeps are cut into checks)");
  await h.advance(60_000);
  assertEquals(h.calls.length, 1);
  h.calls[0].settle({ kind: "issued", cert: cert90(h.now(), "02") });
  await h.flush();
  assertEquals(h.scheduler.state("app.example.io")?.serial, "02");
  await h.advance(59 * DAY);
  assertEquals(h.calls.length, 1);
  await h.advance(DAY);
  assertEquals(h.calls.length, 2);
  h.scheduler.close();
});

Deno.test("renewal: a failed order is retried with backoff, and its error is in the state until it succeeds", async () => {
  const h = harness();
  h.scheduler.track("bad.example.io");
  await h.flush();
  h.calls[0].settle(new Error("urn:ietf:params:acme:error:connection: refused"));
  await h.flush();
  let s = h.scheduler.state("bad.example.io")!;
  assertEquals([s.status, s.failures, s.last_error], [
    "failed",
    1,
    "urn:ietf:params:acme:error:connection: refused",
  ]);
  assertEquals(s.next_renewal, new Date(h.now() + 60_000).toISOString());
  await h.advance(59_999);
  assertEquals(h.calls.length, 1);
  await h.advance(1);
  assertEquals(h.calls.length, 2);
  h.calls[1].settle(new Error("again"));
  await h.flush();
  await h.advance(119_999);
  assertEquals(h.calls.length, 2, "the second retry waits twice as long");
  await h.advance(1);
  h.calls[2].settle({ kind: "issued", cert: cert90(h.now()) });
  await h.flush();
  s = h.scheduler.state("bad.example.io")!;
  assertEquals([s.status, s.failures, s.last_error], ["issued", 0, null]);
  h.scheduler.close();
});

Deno.test("renewal: a failing renewal keeps the valid certificate and retries before it expires", async () => {
  const h = harness();
  h.scheduler.track("app.example.io", cert90(T0 - 60 * DAY));
  await h.flush();
  h.calls[0].settle(new Error("CA down"));
  await h.flush();
  const s = h.scheduler.state("app.example.io")!;
  assertEquals([s.status, s.issued, s.failures], ["issued", true, 1]);
  await h.advance(60_000);
  assertEquals(h.calls.length, 2);
  h.scheduler.close();
});

Deno.test("renewal: start-up with many missing certificates orders at a bounded rate and concurrency", async () => {
  const h = harness({ maxConcurrent: 2, minStartIntervalMs: 1000 });
  for (let i = 0; i < 5; i++) h.scheduler.track(`d${i}.example.io`);
  await h.flush();
  assertEquals(h.calls.length, 1, "one start at a time");
  await h.advance(1000);
  assertEquals(h.calls.length, 2);
  await h.advance(5000);
  assertEquals(h.calls.length, 2, "two in flight at most");
  h.calls[0].settle({ kind: "issued", cert: cert90(h.now()) });
  await h.flush();
  assertEquals(h.calls.length, 3);
  h.calls[1].settle({ kind: "issued", cert: cert90(h.now()) });
  await h.flush();
  assertEquals(h.calls.length, 3, "starts stay a second apart");
  await h.advance(1000);
  assertEquals(h.calls.map((c) => c.hostname), ["d0", "d1", "d2", "d3"].map((d) => `${d}.example.io`));
  h.scheduler.close();
});

Deno.test("renewal: one order per host at a time; a forced renewal during an order runs after it", async () => {
  const h = harness({ minStartIntervalMs: 0 });
  h.scheduler.track("app.example.io", cert90(T0));
  h.scheduler.force("app.example.io");
  await h.flush();
  h.scheduler.force("app.example.io");
  await h.flush();
  assertEquals(h.calls.length, 1);
  assertEquals(h.calls[0].forced, true);
  assertEquals(h.scheduler.state("app.example.io")?.status, "renewing");
  h.calls[0].settle({ kind: "issued", cert: cert90(h.now(), "02") });
  await h.flush();
  assertEquals(h.calls.length, 2);
  assert(h.calls[1].forced);
  h.scheduler.close();
});

Deno.test("renewal: another server holding the order looks again later without counting a failure", async () => {
  const h = harness({ busyRetryMs: 30_000 });
  h.scheduler.track("app.example.io");
  await h.flush();
  h.calls[0].settle({ kind: "busy" });
  await h.flush();
  assertEquals(h.scheduler.state("app.example.io")?.failures, 0);
  await h.advance(30_000);
  h.calls[1].settle({ kind: "loaded", cert: cert90(h.now() - DAY, "07") });
  await h.flush();
  assertEquals(h.scheduler.state("app.example.io")?.serial, "07");
  h.scheduler.close();
});

Deno.test("renewal: an untracked host's order in flight is dropped and never retried", async () => {
  const h = harness();
  h.scheduler.track("gone.example.io");
  await h.flush();
  h.scheduler.untrack("gone.example.io");
  h.calls[0].settle(new Error("late failure"));
  await h.flush();
  assertEquals(h.scheduler.state("gone.example.io"), null);
  await h.advance(DAY);
  assertEquals(h.calls.length, 1);
  h.scheduler.close();
});
