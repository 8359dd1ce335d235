/**
 * Branded error answers for the public front: a self-contained HTML page (inline CSS, no
 * external assets) or `{"error":{"code","message","request_id"}}` for clients preferring JSON.
 */
import { prefersJson } from "./negotiate.ts";

interface PageCopy {
  title: string;
  hint: string;
}

const COPY: Record<number, PageCopy> = {
  400: { title: "Bad request", hint: "The request could not be understood. Check the URL and try again." },
  404: { title: "Not found", hint: "Nothing is served at this address." },
  413: { title: "Payload too large", hint: "The request body is larger than this gateway accepts." },
  502: { title: "Bad gateway", hint: "The tunnel could not get an answer from the service behind it." },
  503: { title: "Service unavailable", hint: "The gateway is busy or shutting down. Try again in a moment." },
  504: { title: "Gateway timeout", hint: "The service behind the tunnel took too long to answer." },
};

/** Codes that deserve their own headline rather than the status's generic one. */
const CODE_COPY: Record<string, PageCopy> = {
  tunnel_offline: {
    title: "Tunnel offline",
    hint: "No HopGate client is connected for this domain right now. Start the client and reload.",
  },
  local_unreachable: {
    title: "Local service unreachable",
    hint: "The HopGate client is connected, but the service it forwards to is not answering.",
  },
  local_error: {
    title: "Local service error",
    hint: "The HopGate client is connected, but the service it forwards to failed.",
  },
};

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function copyFor(status: number, code: string): PageCopy {
  return CODE_COPY[code] ?? COPY[status] ??
    { title: status >= 500 ? "Server error" : "Request error", hint: "Something went wrong." };
}

/** The HTML page for an error. */
export function renderErrorHtml(status: number, code: string, message: string, requestId: string): string {
  const { title, hint } = copyFor(status, code);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${status} ${escapeHtml(title)} · HopGate</title>
<style>
:root{color-scheme:light dark;--bg:#f6f7fb;--card:#fff;--fg:#1d2333;--muted:#5c6478;--accent:#4f46e5;--line:#e3e6ef}
@media (prefers-color-scheme:dark){:root{--bg:#0f121a;--card:#171b26;--fg:#e8ebf3;--muted:#9aa3b8;--accent:#8b85ff;--line:#2a3040}}
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;padding:24px}
main{max-width:560px;width:100%;background:var(--card);border:1px solid var(--line);border-radius:14px;padding:32px}
.brand{display:flex;align-items:center;gap:8px;font-weight:700;color:var(--accent);letter-spacing:.02em}
.brand svg{width:22px;height:22px}
.status{font-size:56px;font-weight:800;line-height:1;margin:24px 0 8px}
h1{font-size:22px;margin:0 0 12px}
p{margin:0 0 12px;color:var(--muted)}
.detail{color:var(--fg);word-break:break-word}
footer{margin-top:24px;padding-top:16px;border-top:1px solid var(--line);font-size:13px;color:var(--muted)}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px}
</style>
</head>
<body>
<main>
<div class="brand"><svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2.2" aria-hidden="true"><path d="M3 17c3-8 6-8 9 0s6 8 9 0"/><circle cx="3" cy="17" r="1.5"/><circle cx="21" cy="17" r="1.5"/></svg>HopGate</div>
<div class="status">${status}</div>
<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(hint)}</p>
<p class="detail">${escapeHtml(message)}</p>
<footer>Error <code>${escapeHtml(code)}</code> · Request ID <code>${escapeHtml(requestId)}</code></footer>
</main>
</body>
</html>
`;
}

/** The JSON body for an error. */
export function renderErrorJson(code: string, message: string, requestId: string): string {
  return JSON.stringify({ error: { code, message, request_id: requestId } });
}

/**
 * An error Response for `request`: JSON when its Accept prefers application/json, HTML otherwise.
 * Never cached; carries X-Request-Id. HEAD requests get the headers without a body.
 */
export function errorResponse(
  status: number,
  code: string,
  message: string,
  request: Request,
  requestId: string,
): Response {
  const json = prefersJson(request.headers.get("accept"));
  const body = json
    ? renderErrorJson(code, message, requestId)
    : renderErrorHtml(status, code, message, requestId);
  const headers = new Headers({
    "content-type": json ? "application/json; charset=utf-8" : "text/html; charset=utf-8",
    "cache-control": "no-store",
    "x-request-id": requestId,
    "x-content-type-options": "nosniff",
  });
  return new Response(request.method === "HEAD" ? null : body, { status, headers });
}
