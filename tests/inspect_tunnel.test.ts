/**
 * The request inspector with real processes: a request made through the tunnel (curl → server → DTLS
 * → client → origin) shows up in the client's inspector page in headless Chromium within a second,
 * with the bytes forwarded untouched; the JSON API lists it too. Screenshot kept in the test output.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { openBrowser } from "./support/chromium.ts";
import { curl, withTunnel } from "./support/tunnel_env.ts";
import { startOrigin } from "./support/tunnel_origin.ts";
import { freePort } from "./support/ports.ts";

const DOMAIN = "app.test";

Deno.test("inspector: a request through the tunnel appears in Chromium within 1 s and in the JSON API", async () => {
  const origin = startOrigin("inspected");
  const port = freePort();
  const inspector = `http://127.0.0.1:${port}`;
  let browser: Awaited<ReturnType<typeof openBrowser>> | undefined;
  const tunnel = {
    domain: DOMAIN,
    target: origin.target,
    clientEnv: { HOP_CLIENT_INSPECT_LISTEN: `127.0.0.1:${port}` },
  };
  try {
    await withTunnel(tunnel, async ({ srv }) => {
      browser = await openBrowser(inspector);
      await browser.waitFor(
        `document.title === "HopGate inspector" && document.getElementById("state").textContent === "live"`,
        15_000,
        "the page to load and go live",
      );
      const sent = performance.now();
      const r = await curl(srv, DOMAIN, "/echo?inspect=1", ["--http1.1", "--data-binary", "inspect me"]);
      assertEquals([r.status, r.text], [200, "inspect me"]);
      const ms = await browser.waitFor(
        `[...document.querySelectorAll("#rows tr")].some((tr) => tr.textContent.includes("/echo?inspect=1"))`,
        1000,
        "the tunnelled request in the page within 1 s",
      );
      console.log(
        `shown ${Math.round(performance.now() - sent)} ms after curl started (waited ${Math.round(ms)} ms)`,
      );
      const out = await Deno.makeTempDir({ prefix: "hopgate-inspect-tunnel-" });
      await browser.screenshot(`${out}/inspector.png`);
      console.log(`screenshot: ${out}/inspector.png`);

      const list = await (await fetch(`${inspector}/api/requests`)).json();
      const items = (Array.isArray(list) ? list : list.requests ?? list.items) as {
        id: number | string;
        method: string;
        path?: string;
        target?: string;
        status: number;
      }[];
      const mine = items.find((x) => (x.path ?? x.target ?? "").includes("/echo?inspect=1"));
      assert(mine, `the API lists the request: ${JSON.stringify(list).slice(0, 400)}`);
      assertEquals([mine.method, mine.status], ["POST", 200]);
    });
  } finally {
    await browser?.close();
    await origin.close();
  }
});
