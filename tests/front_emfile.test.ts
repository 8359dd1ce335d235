/**
 * Issue 11 item 1: a connection flood that exhausts file descriptors (the child runs with
 * `prlimit --nofile=128`) must not kill the listeners: once the flood is gone, both fronts answer
 * again within 5 s, and the failed accepts were logged at warn.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { curl } from "./support/front_fixture.ts";
import { sleep } from "./support/wait.ts";

Deno.test("fronts recover from EMFILE within 5 s after a connection flood", async () => {
  const server = new URL("./support/front_emfile_server.ts", import.meta.url).pathname;
  const child = new Deno.Command("prlimit", {
    args: ["--nofile=128:128", Deno.execPath(), "run", "-A", server],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let buffered = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const pump = (async () => {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      buffered += value;
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      lines.push(...parts);
    }
  })();
  const waitLine = async (match: (l: string) => boolean, ms: number) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const l = lines.find(match);
      if (l) return l;
      await sleep(50);
    }
    throw new Error(`no matching line in ${ms} ms; got ${lines.join("\n")}`);
  };
  try {
    const ports = JSON.parse(await waitLine((l) => l.includes('"ports"'), 20_000)).ports as Record<
      string,
      number
    >;
    for (const port of [ports.http, ports.https]) {
      const flood: Deno.Conn[] = [];
      for (let i = 0; i < 300; i++) {
        try {
          flood.push(await Deno.connect({ hostname: "127.0.0.1", port }));
        } catch {
          break; // the backlog is full: that is the point
        }
      }
      await sleep(500);
      for (const c of flood) c.close();
    }
    await waitLine(
      (l) => l.includes('"level":"warn"') || l.includes('"level":40') || l.includes("accept failed"),
      5000,
    );
    const fds = () => {
      try {
        return [...Deno.readDirSync(`/proc/${child.pid}/fd`)].length;
      } catch {
        return -1;
      }
    };
    const t0 = Date.now();
    let ok = { http: false, https: false };
    while (Date.now() - t0 < 5000 && !(ok.http && ok.https)) {
      const [h, s] = await Promise.all([
        curl([
          "--max-time",
          "1",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          `http://127.0.0.1:${ports.http}/len/1`,
        ]),
        curl([
          "-k",
          "--max-time",
          "1",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          `https://localhost:${ports.https}/len/1`,
        ]),
      ]);
      ok = { http: ok.http || h.out === "200", https: ok.https || s.out === "200" };
    }
    assertEquals(
      ok,
      { http: true, https: true },
      `not recovered after ${Date.now() - t0} ms; ${fds()} fds open`,
    );
    console.log(`recovered in ${Date.now() - t0} ms`);
    assert(lines.some((l) => l.includes("accept failed")), lines.join("\n"));
  } finally {
    try {
      child.kill();
    } catch { /* already exited: the assertion above says why */ }
    const status = await child.status;
    const err = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
    if (status.code !== 0 && status.signal !== "SIGTERM") {
      console.error("child exited", status, err.slice(0, 20000));
    }
    await pump.catch(() => {});
  }
});
