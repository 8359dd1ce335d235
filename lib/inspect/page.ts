/**
 * The inspector's single page: HTML, CSS and JS in one string, so the compiled client serves it
 * without reading anything from disk and the page needs nothing from the network.
 */
export const INSPECTOR_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>HopGate inspector</title>
<style>
:root { --bg:#f6f7f9; --fg:#1b1f24; --muted:#667085; --line:#e3e6ea; --accent:#2f6fed; --ok:#137333; --warn:#b06000; --bad:#c5221f; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.4 system-ui, sans-serif; background:var(--bg); color:var(--fg); }
header { display:flex; gap:16px; align-items:center; padding:10px 16px; background:#111827; color:#fff; }
header h1 { font-size:16px; margin:0; }
header .state { font-size:12px; color:#9ca3af; }
header .state.live { color:#34d399; }
main { display:grid; grid-template-columns: minmax(420px, 45%) 1fr; height: calc(100vh - 44px); }
#list { overflow:auto; border-right:1px solid var(--line); background:#fff; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:4px 8px; border-bottom:1px solid var(--line); white-space:nowrap; }
th { position:sticky; top:0; background:#fafafa; font-weight:600; font-size:12px; color:var(--muted); }
#rows tr { cursor:pointer; }
#rows tr:hover { background:#f0f4ff; }
#rows tr.selected { background:#dde7ff; }
td.path { max-width:320px; overflow:hidden; text-overflow:ellipsis; font-family:ui-monospace, monospace; }
.s2 { color:var(--ok); } .s3 { color:var(--accent); } .s4 { color:var(--warn); } .s5, .err { color:var(--bad); }
#detail { overflow:auto; padding:12px 16px; }
#detail h2 { font-size:15px; margin:4px 0 8px; font-family:ui-monospace, monospace; word-break:break-all; }
h3 { font-size:13px; margin:14px 0 4px; color:var(--muted); text-transform:uppercase; letter-spacing:.04em; }
pre { background:#fff; border:1px solid var(--line); padding:8px; margin:0; overflow:auto; max-height:360px; font:12px/1.4 ui-monospace, monospace; white-space:pre-wrap; word-break:break-all; }
.headers td { font:12px ui-monospace, monospace; white-space:normal; word-break:break-all; }
.headers td:first-child { color:var(--muted); width:30%; word-break:keep-all; overflow-wrap:normal; }
img.body { max-width:100%; max-height:360px; border:1px solid var(--line); background:#fff; }
.note { color:var(--muted); font-size:12px; margin:2px 0; }
.pair { display:grid; grid-template-columns:1fr 1fr; gap:12px; }
form.replay { background:#fff; border:1px solid var(--line); padding:8px; display:grid; gap:6px; }
form.replay input, form.replay textarea { font:12px ui-monospace, monospace; width:100%; }
form.replay .line { display:flex; gap:6px; }
form.replay .line input:first-child { width:90px; }
button { background:var(--accent); color:#fff; border:0; border-radius:4px; padding:6px 14px; cursor:pointer; }
.empty { color:var(--muted); padding:24px; }
</style>
</head>
<body>
<header><h1>HopGate inspector</h1><span id="count">0 requests</span><span id="state" class="state">connecting…</span></header>
<main>
<section id="list"><table><thead><tr><th>Time</th><th>Method</th><th>Path</th><th>Status</th><th>Duration</th><th>In / Out</th></tr></thead><tbody id="rows"></tbody></table></section>
<section id="detail"><p class="empty">Select a request to see its headers and bodies.</p></section>
</main>
<script>
"use strict";
const rows = document.getElementById("rows");
const detailEl = document.getElementById("detail");
const items = new Map();
let selected = null;
let current = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}
function size(n) { return n < 1024 ? n + " B" : n < 1048576 ? (n / 1024).toFixed(1) + " KB" : (n / 1048576).toFixed(1) + " MB"; }
function statusClass(s) { return s ? "s" + String(s)[0] : ""; }
function row(x) {
  const time = new Date(x.started_at).toLocaleTimeString();
  const status = x.error && !x.status ? "error" : x.status === null ? "…" : String(x.status);
  const tr = el("tr", { "data-id": x.id, onclick: () => select(x.id) },
    el("td", {}, time), el("td", {}, x.method + (x.replay_of ? " ↻" : "")), el("td", { class: "path", title: x.path }, x.path),
    el("td", { class: x.error ? "err" : statusClass(x.status) }, status),
    el("td", {}, x.duration_ms === null ? "…" : x.duration_ms.toFixed(1) + " ms"),
    el("td", {}, size(x.request_bytes) + " / " + size(x.response_bytes)));
  if (x.id === selected) tr.classList.add("selected");
  return tr;
}
function upsert(x) {
  const old = items.get(x.id);
  items.set(x.id, x);
  const tr = row(x);
  if (old) { const prev = rows.querySelector('tr[data-id="' + x.id + '"]'); if (prev) prev.replaceWith(tr); else rows.prepend(tr); }
  else rows.prepend(tr);
  count();
  if (x.id === selected && x.done && current && !current.done) select(x.id);
}
function drop(id) { items.delete(id); const tr = rows.querySelector('tr[data-id="' + id + '"]'); if (tr) tr.remove(); count(); }
function count() { document.getElementById("count").textContent = items.size + " requests"; }

function headersTable(lines) {
  if (!lines.length) return el("p", { class: "note" }, "(none)");
  return el("table", { class: "headers" }, ...lines.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, v))));
}
function bodyView(b) {
  const notes = [];
  if (b.truncated) notes.push("first " + size(b.kept) + " of " + size(b.total));
  if (b.decoded) notes.push("decoded from " + b.decoded + " for display");
  if (b.decodeError) notes.push(b.decodeError);
  const note = notes.length ? el("p", { class: "note" }, notes.join("; ")) : null;
  let view;
  if (b.kind === "empty") view = el("p", { class: "note" }, "(empty)");
  else if (b.kind === "image") view = el("img", { class: "body", src: b.dataUrl, alt: "image body" });
  else if (b.kind === "binary") view = el("pre", { class: "body hex" }, b.hex);
  else view = el("pre", { class: "body " + b.kind }, b.text);
  return el("div", {}, note, view);
}
function side(title, x, cls) {
  return el("div", { class: cls },
    el("h3", {}, title),
    el("p", { class: "status " + (x.error ? "err" : statusClass(x.status)) },
      x.status === null ? (x.error || "no response") : x.status + " " + x.status_text),
    x.duration_ms !== null ? el("p", { class: "note" }, x.duration_ms.toFixed(1) + " ms") : null,
    headersTable(x.response.headers), bodyView(x.response.body));
}

async function select(id) {
  selected = id;
  for (const tr of rows.querySelectorAll("tr.selected")) tr.classList.remove("selected");
  const tr = rows.querySelector('tr[data-id="' + id + '"]'); if (tr) tr.classList.add("selected");
  const res = await fetch("/api/requests/" + id);
  if (!res.ok) { detailEl.replaceChildren(el("p", { class: "empty" }, "This request is no longer kept.")); return; }
  const x = await res.json();
  current = x;
  render(x);
}
function render(x) {
  const form = el("form", { class: "replay", onsubmit: (e) => { e.preventDefault(); replay(x, form); } },
    el("div", { class: "line" }, el("input", { name: "method", value: x.method }), el("input", { name: "path", value: x.path })),
    el("textarea", { name: "headers", rows: "5" }),
    el("textarea", { name: "body", rows: "4", placeholder: "body (unchanged: the captured bytes are sent)" }),
    el("div", {}, el("button", { id: "replay-btn", type: "submit" }, "Replay")));
  form.headers.value = x.request.headers.map(([k, v]) => k + ": " + v).join("\\n");
  form.headers.dataset.orig = form.headers.value;
  if (x.request.body.kind === "text" || x.request.body.kind === "json") { form.body.value = x.request.body.text; }
  form.body.dataset.orig = form.body.value;
  detailEl.replaceChildren(
    el("h2", {}, x.method + " " + x.path),
    el("p", { class: "note" }, new Date(x.started_at).toLocaleString() + " → " + x.local_url + (x.replay_of ? " (replay of #" + x.replay_of + ")" : "")),
    el("h3", {}, "Request headers"), headersTable(x.request.headers),
    el("h3", {}, "Request body"), bodyView(x.request.body),
    el("h3", {}, "Response"),
    el("p", { class: "status " + (x.error ? "err" : statusClass(x.status)) }, x.status === null ? (x.error || "waiting…") : x.status + " " + x.status_text + (x.error ? " (" + x.error + ")" : "")),
    el("h3", {}, "Response headers"), headersTable(x.response.headers),
    el("h3", {}, "Response body"), bodyView(x.response.body),
    el("h3", {}, "Replay to the local service"), form,
    el("div", { id: "replay-result" }));
}
async function replay(x, form) {
  const edits = {};
  if (form.method.value !== x.method) edits.method = form.method.value;
  if (form.path.value !== x.path) edits.path = form.path.value;
  if (form.headers.value !== form.headers.dataset.orig) {
    edits.headers = form.headers.value.split("\\n").filter((l) => l.includes(":")).map((l) => { const i = l.indexOf(":"); return [l.slice(0, i).trim(), l.slice(i + 1).trim()]; });
  }
  if (form.body.value !== form.body.dataset.orig) edits.body = form.body.value;
  const out = document.getElementById("replay-result");
  out.replaceChildren(el("p", { class: "note" }, "replaying…"));
  const res = await fetch("/api/requests/" + x.id + "/replay", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(edits) });
  const r = await res.json();
  if (!res.ok) { out.replaceChildren(el("p", { class: "err" }, "Replay failed: " + r.error.message)); return; }
  out.replaceChildren(el("div", { class: "pair" }, side("Original", x, "original"), side("Replay #" + r.id, r.replay, "replay")));
  out.scrollIntoView();
}

async function load() {
  const res = await fetch("/api/requests");
  const { requests } = await res.json();
  for (const x of requests.reverse()) upsert(x);
}
function live() {
  const state = document.getElementById("state");
  const es = new EventSource("/api/events");
  let lost = false;
  es.onopen = () => {
    state.textContent = "live"; state.className = "state live";
    // After a lost connection the client may have restarted (ids begin again): start from the list.
    if (lost) { lost = false; items.clear(); rows.replaceChildren(); count(); load(); }
  };
  es.onerror = () => { lost = true; state.textContent = "reconnecting…"; state.className = "state"; };
  es.addEventListener("exchange", (e) => upsert(JSON.parse(e.data)));
  es.addEventListener("dropped", (e) => drop(JSON.parse(e.data).id));
}
load().then(live);
</script>
</body>
</html>
`;
