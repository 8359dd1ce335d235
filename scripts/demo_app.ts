/**
 * The small web app `deno task dev` puts behind the tunnel: a page, a WebSocket echo at /ws,
 * server-sent events at /events and a body echo at /echo.
 *   deno run -A scripts/demo_app.ts [port]
 */

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>HopGate demo</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1b1f24}
code{background:#eef1f4;padding:.1rem .3rem;border-radius:4px}#log{white-space:pre-wrap;background:#f6f8fa;padding:1rem}</style>
</head><body><h1>It works: this page came through a HopGate tunnel.</h1>
<p>Served by the demo app at <code>__LOCAL__</code> for <code>__HOST__</code>.</p>
<p><button id="b">WebSocket echo</button></p><div id="log"></div>
<script>
const log = (s) => document.getElementById("log").textContent += s + "\\n";
document.getElementById("b").onclick = () => {
  const ws = new WebSocket(location.href.replace(/^http/, "ws").replace(/\\/?$/, "/ws"));
  ws.onopen = () => ws.send("hello " + new Date().toISOString());
  ws.onmessage = (e) => { log("echo: " + e.data); ws.close(); };
};
</script></body></html>`;

/** Starts the demo app on 127.0.0.1:port (0 picks one); resolves with the server. */
export function startDemoApp(port = 0): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, (req, info) => {
    const url = new URL(req.url);
    if (url.pathname === "/ws" && req.headers.get("upgrade")?.toLowerCase() === "websocket") {
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onmessage = (e) => socket.send(e.data);
      return response;
    }
    if (url.pathname === "/events") {
      let n = 0;
      let timer: ReturnType<typeof setInterval> | undefined;
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          timer = setInterval(() => {
            c.enqueue(new TextEncoder().encode(`data: tick ${++n}\n\n`));
            if (n === 5) {
              clearInterval(timer);
              c.close();
            }
          }, 200);
        },
        cancel() {
          clearInterval(timer);
        },
      });
      return new Response(body, {
        headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
      });
    }
    if (url.pathname === "/echo") {
      return new Response(req.body, {
        headers: { "content-type": req.headers.get("content-type") ?? "application/octet-stream" },
      });
    }
    const page = PAGE.replace("__LOCAL__", `${info.remoteAddr.hostname} → 127.0.0.1:${url.port}`)
      .replace(
        "__HOST__",
        (req.headers.get("x-forwarded-host") ?? req.headers.get("host") ?? "").replace(/[<>&"]/g, ""),
      );
    return new Response(page, { headers: { "content-type": "text/html; charset=utf-8" } });
  });
}

if (import.meta.main) {
  const app = startDemoApp(Number(Deno.args[0] ?? 3000));
  console.log(`demo app on http://127.0.0.1:${app.addr.port}`);
}
