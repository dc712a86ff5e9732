"""The dashboard page: one self-contained HTML document (inline CSS, JS and SVG; nothing
fetched from elsewhere: the machines it runs on may have no internet).

It polls ``/api/status`` every second and ``/api/history`` / ``/api/audit`` every three, and
draws: the session's figures, the equity and drawdown chart, the per-symbol table (state,
edge, position, round trips, win rate, PnL, feed age), the last trades, guard events and
audit entries, and the controls. Every number is also in a ``data-v`` attribute with its raw
value (the Chromium test compares them with ``arbkit status --json``).

The control token comes from ``?token=`` (moved to sessionStorage and removed from the
address bar at once) or from the token box; it is sent in the ``X-Arbkit-Token`` header.
"""

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>arbkit session</title>
<style>
:root{--bg:#0f1419;--panel:#171e26;--line:#263240;--text:#dce3ea;--dim:#8595a5;--good:#3fb950;
--bad:#f85149;--warn:#d29922;--accent:#58a6ff}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--text);
font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
header{display:flex;align-items:center;gap:12px;padding:12px 20px;border-bottom:1px solid var(--line);
flex-wrap:wrap}
h1{font-size:18px;margin:0;font-weight:600}h2{font-size:14px;margin:0 0 8px;color:var(--dim);
font-weight:600;text-transform:uppercase;letter-spacing:.04em}
.badge{padding:2px 8px;border-radius:10px;font-size:12px;border:1px solid var(--line);color:var(--dim)}
.badge.good{color:var(--good);border-color:var(--good)}.badge.bad{color:var(--bad);border-color:var(--bad)}
.badge.warn{color:var(--warn);border-color:var(--warn)}
main{padding:16px 20px;display:grid;gap:16px;grid-template-columns:repeat(12,1fr)}
section{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:12px 14px;
grid-column:span 12;min-width:0}
.half{grid-column:span 6}@media(max-width:1000px){.half{grid-column:span 12}}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:10px}
.kpi{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:8px 10px}
.kpi .l{color:var(--dim);font-size:12px}.kpi .v{font-size:20px;font-variant-numeric:tabular-nums}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{color:var(--dim);font-weight:500;font-size:12px}th:first-child,td:first-child,.txt{text-align:left}
.pos{color:var(--good)}.neg{color:var(--bad)}.dim{color:var(--dim)}
button{background:#21303f;color:var(--text);border:1px solid var(--line);border-radius:5px;
padding:4px 10px;cursor:pointer;font:inherit}button:hover{border-color:var(--accent)}
button.danger{border-color:var(--bad);color:var(--bad)}button:disabled{opacity:.4;cursor:not-allowed}
.controls{display:flex;gap:8px;align-items:center;flex-wrap:wrap}
input{background:var(--bg);color:var(--text);border:1px solid var(--line);border-radius:5px;padding:4px 8px}
#chart{width:100%;height:260px;display:block}.scroll{overflow-x:auto}
#msg{min-height:1.2em;color:var(--dim)}footer{padding:0 20px 16px;color:var(--dim);font-size:12px}
a{color:var(--accent)}
</style></head>
<body>
<header>
  <h1>arbkit · <span id="session">…</span></h1>
  <span class="badge" id="b-run">connecting</span>
  <span class="badge" id="b-halt"></span>
  <span class="badge" id="b-ready"></span>
  <span class="badge" id="b-mode"></span>
  <span class="badge" id="b-access">read-only</span>
  <span class="dim" id="updated"></span>
</header>
<main>
<section>
  <div class="kpis">
    <div class="kpi"><div class="l">Equity</div><div class="v" id="k-equity">–</div></div>
    <div class="kpi"><div class="l">Net PnL (closed)</div><div class="v" id="k-net_pnl">–</div></div>
    <div class="kpi"><div class="l">Drawdown</div><div class="v" id="k-drawdown">–</div></div>
    <div class="kpi"><div class="l">Drawdown % of peak</div><div class="v" id="k-drawdown_ratio">–</div></div>
    <div class="kpi"><div class="l">Round trips</div><div class="v" id="k-trades">–</div></div>
    <div class="kpi"><div class="l">Win rate</div><div class="v" id="k-win_rate">–</div></div>
    <div class="kpi"><div class="l">Gross exposure</div><div class="v" id="k-gross_exposure">–</div></div>
    <div class="kpi"><div class="l">Quotes</div><div class="v" id="k-quotes">–</div></div>
    <div class="kpi"><div class="l">Decide p99 µs/event</div><div class="v" id="k-decide_us_p99">–</div></div>
  </div>
</section>
<section>
  <h2>Equity and drawdown</h2>
  <svg id="chart" viewBox="0 0 1000 260" preserveAspectRatio="none" role="img"
       aria-label="equity and drawdown chart"></svg>
</section>
<section>
  <h2>Symbols</h2>
  <div class="scroll"><table id="routes"><thead><tr>
    <th>symbol</th><th class="txt">route</th><th class="txt">state</th><th>edge bps</th>
    <th>threshold bps</th><th>position a</th><th>position b</th><th>entries</th><th>trades</th>
    <th>win rate</th><th>net PnL</th><th>feed age s</th><th>skipped (symbol off)</th>
    <th class="txt">entries on</th><th class="txt">control</th>
  </tr></thead><tbody></tbody></table></div>
</section>
<section>
  <h2>Controls</h2>
  <div class="controls">
    <button id="c-stop" data-control="stop" disabled>Stop (reduce only)</button>
    <button id="c-resume" data-control="resume" disabled>Resume</button>
    <button id="c-kill" class="danger" data-control="kill" disabled>Kill switch</button>
    <button id="c-alert" disabled>Send test alert</button>
    <span id="tokenbox"><input id="token" type="password" placeholder="control token"
      autocomplete="off" size="18"> <button id="token-set">Use token</button></span>
  </div>
  <div id="msg"></div>
</section>
<section class="half">
  <h2>Recent trades</h2>
  <div class="scroll"><table id="trades"><thead><tr><th>exit time</th><th class="txt">route</th>
  <th>dir</th><th>qty</th><th>entry edge</th><th>exit edge</th><th>net PnL</th>
  <th class="txt">exit</th></tr></thead><tbody></tbody></table></div>
</section>
<section class="half">
  <h2>Guard events</h2>
  <div class="scroll"><table id="guards"><thead><tr><th>time</th><th class="txt">guard</th>
  <th class="txt">route</th><th class="txt">detail</th><th>value</th><th>limit</th></tr></thead>
  <tbody></tbody></table></div>
</section>
<section>
  <h2>Audit log</h2>
  <div class="scroll"><table id="audit"><thead><tr><th>when (UTC)</th><th class="txt">control</th>
  <th class="txt">who</th><th class="txt">via</th><th class="txt">result</th></tr></thead>
  <tbody></tbody></table></div>
</section>
</main>
<footer><a href="/metrics">/metrics</a> · <a href="/health">/health</a> ·
<a href="/api/status">/api/status</a></footer>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("arbkit-token") || "";
let authorized = false, controlsOn = false, last = null;
(function takeToken() {
  const u = new URL(location.href);
  if (u.searchParams.has("token")) {
    token = u.searchParams.get("token");
    sessionStorage.setItem("arbkit-token", token);
    u.searchParams.delete("token");
    history.replaceState(null, "", u.pathname + (u.search || "") + u.hash);
  }
})();
function hdrs() { return token ? {"X-Arbkit-Token": token} : {}; }
function num(v, d = 2) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return Number(v).toLocaleString("en-US", {minimumFractionDigits: d, maximumFractionDigits: d});
}
function pct(v, d = 1) { return v === null || v === undefined ? "–" : num(100 * v, d) + "%"; }
function hms(ns) {
  if (!ns) return "–";
  return new Date(Number(ns) / 1e6).toISOString().slice(11, 19);
}
function cls(v) { return v > 0 ? "pos" : v < 0 ? "neg" : ""; }
function cell(text, v, klass, field) {
  const td = document.createElement("td");
  td.textContent = text;
  if (v !== undefined) td.dataset.v = v === null ? "" : String(v);
  if (klass) td.className = klass;
  if (field) td.dataset.f = field;
  return td;
}
function setKpi(id, text, v, klass) {
  const el = $("k-" + id); el.textContent = text; el.dataset.v = v === null || v === undefined ? "" : String(v);
  el.className = "v " + (klass || "");
}
function badge(id, text, kind) { const b = $(id); b.textContent = text; b.className = "badge " + (kind || ""); }
function legAge(st, legs) {
  const ages = (legs || []).map((k) => ((st.feeds || {})[k] || {}).age_s).filter((a) => typeof a === "number");
  return ages.length ? Math.max(...ages) : null;
}
function render(st) {
  last = st;
  $("session").textContent = st.session || "?";
  document.title = "arbkit · " + (st.session || "session");
  const age = Date.now() / 1000 - (st.updated_at || 0);
  const up = age <= (st.up_within_s || 5);
  badge("b-run", up ? "running" : "not reporting", up ? "good" : "bad");
  const halt = st.halt_reason || "none";
  badge("b-halt", halt === "none" ? "trading" : "halted: " + halt, halt === "none" ? "good" : halt === "stop" ? "warn" : "bad");
  const ready = (st.health || {}).ready;
  badge("b-ready", ready ? "ready" : "not ready", ready ? "good" : "warn");
  badge("b-mode", st.mode || "paper");
  $("updated").textContent = "updated " + new Date((st.updated_at || 0) * 1000).toISOString().slice(11, 19) + " UTC";
  setKpi("equity", num(st.equity), st.equity);
  setKpi("net_pnl", num(st.net_pnl, 4), st.net_pnl, cls(st.net_pnl));
  setKpi("drawdown", num(st.drawdown, 4), st.drawdown, st.drawdown > 0 ? "neg" : "");
  setKpi("drawdown_ratio", pct(st.drawdown_ratio, 3), st.drawdown_ratio);
  setKpi("trades", String(st.trades ?? "–"), st.trades);
  setKpi("win_rate", pct(st.win_rate), st.win_rate);
  setKpi("gross_exposure", num(st.gross_exposure), st.gross_exposure);
  setKpi("quotes", (st.quotes ?? 0).toLocaleString("en-US"), st.quotes);
  setKpi("decide_us_p99", num(st.decide_us_p99, 1), st.decide_us_p99);
  const body = $("routes").tBodies[0]; body.replaceChildren();
  for (const r of st.routes || []) {
    const tr = document.createElement("tr");
    tr.dataset.route = r.route; tr.dataset.symbol = r.symbol || "";
    const fa = legAge(st, r.legs);
    const skips = (r.skips || {}).symbol_off || 0;
    tr.append(cell(r.symbol || "", r.symbol, "", "symbol"), cell(r.route, r.route, "txt", "route"),
      cell(r.state, r.state, "txt", "state"),
      cell(num(r.best_edge_bps, 2), r.best_edge_bps, "", "best_edge_bps"),
      cell(num(r.threshold_bps, 2), r.threshold_bps, "", "threshold_bps"),
      cell(num(r.pos_a, 5), r.pos_a, "", "pos_a"), cell(num(r.pos_b, 5), r.pos_b, "", "pos_b"),
      cell(String(r.entries ?? 0), r.entries, "", "entries"),
      cell(String(r.trades ?? 0), r.trades, "", "trades"),
      cell(pct(r.win_rate), r.win_rate, "", "win_rate"),
      cell(num(r.net_pnl, 4), r.net_pnl, cls(r.net_pnl), "net_pnl"),
      cell(fa === null ? "–" : num(fa, 2), fa, "", "feed_age_s"),
      cell(String(skips), skips, "", "skipped_symbol_off"),
      cell(r.off ? "off" : "on", r.off ? "off" : "on", r.off ? "txt neg" : "txt pos", "entries_on"));
    const td = document.createElement("td"); td.className = "txt";
    const b = document.createElement("button");
    b.textContent = r.off ? "Turn " + r.symbol + " on" : "Turn " + r.symbol + " off";
    b.dataset.control = (r.off ? "symbol_on:" : "symbol_off:") + r.symbol;
    b.className = "sym-toggle"; b.disabled = !authorized;
    b.addEventListener("click", () => send(b.dataset.control));
    td.append(b); tr.append(td); body.append(tr);
  }
  const tb = $("trades").tBodies[0]; tb.replaceChildren();
  for (const t of st.recent_trades || []) {
    const tr = document.createElement("tr");
    tr.append(cell(hms(t.exit_ts_ns)), cell(t.route, undefined, "txt"), cell(t.dir > 0 ? "a→b" : "b→a"),
      cell(num(t.qty, 5), t.qty), cell(num(t.entry_edge_bps, 2)), cell(num(t.exit_edge_bps, 2)),
      cell(num(t.net_pnl, 4), t.net_pnl, cls(t.net_pnl)), cell(t.exit_reason, undefined, "txt"));
    tb.append(tr);
  }
  const gb = $("guards").tBodies[0]; gb.replaceChildren();
  for (const g of st.recent_guards || []) {
    const tr = document.createElement("tr");
    tr.dataset.guard = g.guard;
    tr.append(cell(hms(g.ts_ns)), cell(g.guard, g.guard, "txt"), cell(g.route, undefined, "txt"),
      cell(g.detail || "", undefined, "txt"), cell(num(g.value, 2)), cell(num(g.limit, 2)));
    gb.append(tr);
  }
  for (const id of ["c-stop", "c-resume", "c-kill", "c-alert"]) $(id).disabled = !authorized;
}
function drawChart(h) {
  const svg = $("chart"), W = 1000, H = 260, top = 170, gap = 18;
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const n = (h.equity || []).length;
  const mk = (tag, attrs, text) => { const e = document.createElementNS(ns, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]); if (text !== undefined) e.textContent = text; svg.append(e); return e; };
  if (n < 2) { mk("text", {x: 20, y: 40, fill: "#8595a5", "font-size": 14}, "waiting for equity samples…"); return; }
  const eq = h.equity, dd = h.drawdown, ts = h.ts_ns;
  const lo = Math.min(...eq), hi = Math.max(...eq), span = hi - lo || 1;
  const ddMax = Math.max(...dd) || 1;
  const x = (i) => 60 + (W - 70) * i / (n - 1);
  const y = (v) => 10 + (top - 20) * (1 - (v - lo) / span);
  const yd = (v) => top + gap + (H - top - gap - 8) * (v / ddMax);
  let p = ""; for (let i = 0; i < n; i++) p += (i ? "L" : "M") + x(i).toFixed(1) + " " + y(eq[i]).toFixed(1);
  let a = "M" + x(0) + " " + (top + gap);
  for (let i = 0; i < n; i++) a += "L" + x(i).toFixed(1) + " " + yd(dd[i]).toFixed(1);
  a += "L" + x(n - 1) + " " + (top + gap) + "Z";
  for (const v of [lo, (lo + hi) / 2, hi]) {
    mk("line", {x1: 60, x2: W - 10, y1: y(v), y2: y(v), stroke: "#263240"});
    mk("text", {x: 4, y: y(v) + 4, fill: "#8595a5", "font-size": 11}, num(v, 2));
  }
  mk("path", {d: p, fill: "none", stroke: "#58a6ff", "stroke-width": 1.6, id: "equity-line"});
  mk("path", {d: a, fill: "rgba(248,81,73,.35)", stroke: "#f85149", "stroke-width": 1, id: "drawdown-area"});
  mk("text", {x: 4, y: top + gap + 10, fill: "#8595a5", "font-size": 11}, "DD");
  mk("text", {x: 4, y: H - 4, fill: "#8595a5", "font-size": 11}, "-" + num(ddMax, 2));
  mk("text", {x: 60, y: H - 1, fill: "#8595a5", "font-size": 11}, hms(ts[0]));
  mk("text", {x: W - 70, y: H - 1, fill: "#8595a5", "font-size": 11}, hms(ts[n - 1]));
  svg.dataset.points = String(n);
}
function renderAudit(rows) {
  const b = $("audit").tBodies[0]; b.replaceChildren();
  for (const r of rows.slice(0, 12)) {
    const tr = document.createElement("tr");
    const res = r.requested ? "requested" : r.applied ? "applied" : r.refused ? "refused: " + r.refused : "";
    tr.append(cell(String(r.ts || "").slice(0, 19).replace("T", " ")), cell(r.control || "", undefined, "txt"),
      cell(r.by || "", undefined, "txt"), cell(r.via || "", undefined, "txt"), cell(res, undefined, "txt"));
    b.append(tr);
  }
}
async function getJSON(path) {
  const r = await fetch(path, {headers: hdrs(), cache: "no-store"});
  if (!r.ok && r.status !== 503) throw new Error(path + ": " + r.status);
  return r.json();
}
async function send(control) {
  if (control === "kill" && !confirm("Kill switch: flatten every position and halt for good?")) return;
  $("msg").textContent = "sending " + control + "…";
  try {
    const r = await fetch("/api/control", {method: "POST", headers: {...hdrs(), "Content-Type": "application/json"},
      body: JSON.stringify({control})});
    const j = await r.json();
    $("msg").textContent = r.ok ? control + " sent (" + j.ts + "); applied at the next control poll" : "refused: " + j.error;
  } catch (e) { $("msg").textContent = "failed: " + e; }
  refresh();
}
async function testAlert() {
  const r = await fetch("/api/test-alert", {method: "POST", headers: {...hdrs(), "Content-Type": "application/json"}, body: "{}"});
  const j = await r.json();
  $("msg").textContent = r.ok ? "test alert sent to " + j.sent + " webhook(s)" : "refused: " + j.error;
}
async function whoami() {
  try {
    const j = await getJSON("/api/whoami");
    controlsOn = j.controls; authorized = j.authorized;
    badge("b-access", authorized ? "controls" : controlsOn ? "read-only (no token)" : "read-only (controls off)", authorized ? "good" : "");
    $("tokenbox").style.display = controlsOn && !authorized ? "" : "none";
    if (last) render(last);
  } catch (e) { /* the next poll retries */ }
}
async function refresh() {
  try { render(await getJSON("/api/status")); }
  catch (e) { badge("b-run", "unreachable", "bad"); }
}
async function slow() {
  try { drawChart(await getJSON("/api/history")); } catch (e) { /* retried */ }
  try { renderAudit(await getJSON("/api/audit")); } catch (e) { /* retried */ }
}
for (const id of ["c-stop", "c-resume", "c-kill"]) $(id).addEventListener("click", () => send($(id).dataset.control));
$("c-alert").addEventListener("click", testAlert);
$("token-set").addEventListener("click", () => { token = $("token").value.trim(); sessionStorage.setItem("arbkit-token", token); $("token").value = ""; whoami(); });
whoami().then(refresh).then(slow);
setInterval(refresh, 1000); setInterval(slow, 3000); setInterval(whoami, 10000);
</script>
</body></html>
"""
