// shoprec admin dashboard: reads the admin API with a key a person types (kept for this tab only).
"use strict";
const $ = (s) => document.querySelector(s);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
let key = sessionStorage.getItem("shoprec.adminKey") || "";

async function api(path, options = {}) {
  const res = await fetch(path, { ...options, headers: { "X-API-Key": key, "Content-Type": "application/json" } });
  if (!res.ok) throw new Error(`${res.status}: ${(await res.text()).slice(0, 300)}`);
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

function table(rows, columns) {
  if (!rows || !rows.length) return "<p>None yet.</p>";
  return `<table><thead><tr>${columns.map((c) => `<th>${esc(c)}</th>`).join("")}</tr></thead><tbody>${
    rows.map((r) => `<tr>${columns.map((c) => `<td>${esc(typeof r[c] === "object" ? JSON.stringify(r[c]) : r[c])}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
}

function lineChart(days, series) {
  const w = 900, h = 220, pad = 34, names = Object.keys(series);
  if (!days.length) return "<p>No events yet.</p>";
  const max = Math.max(1, ...names.flatMap((n) => series[n]));
  const x = (i) => pad + (i * (w - 2 * pad)) / Math.max(days.length - 1, 1);
  const y = (v) => h - pad - (v * (h - 2 * pad)) / max;
  const colors = ["#0b63ce", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#1098ad", "#c2255c", "#5c940d"];
  const paths = names.map((n, j) => `<path d="${series[n].map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join("")}" fill="none" stroke="${colors[j % 8]}" stroke-width="2"><title>${esc(n)}</title></path>`).join("");
  const legend = names.map((n, j) => `<tspan fill="${colors[j % 8]}" dx="12">■ ${esc(n)}</tspan>`).join("");
  return `<svg viewBox="0 0 ${w} ${h + 20}" role="img" aria-label="events per day by type" style="width:100%">
    <line x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}" stroke="#999"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${h - pad}" stroke="#999"/>
    <text x="${pad}" y="${pad - 8}" font-size="11">${max}</text><text x="${pad}" y="${h - pad + 16}" font-size="11">${esc(days[0])}</text>
    <text x="${w - pad}" y="${h - pad + 16}" font-size="11" text-anchor="end">${esc(days[days.length - 1])}</text>${paths}
    <text x="${pad}" y="${h + 12}" font-size="12">${legend}</text></svg>`;
}

async function loadAll() {
  const [stats, search, versions, runs, experiments, rules, builds] = await Promise.all([
    api("/v1/admin/stats"), api("/v1/admin/search-analytics"), api("/v1/admin/versions"), api("/v1/admin/runs"),
    api("/v1/admin/experiments"), api("/v1/admin/rules"), api("/v1/admin/builds").catch(() => ({ builds: [] })),
  ]);
  const e = stats.engine, totals = stats.events.totals;
  $("#tiles").innerHTML = [["Products", e.products], ["Events", (e.store || {}).events], ["Users", (e.store || {}).users],
    ["Serving version", e.version || "none"], ["Purchases", totals.purchase || 0], ["Searches", totals.search || 0]]
    .map(([label, value]) => `<div class="panel"><div>${esc(label)}</div><div class="stat">${esc(value)}</div></div>`).join("");
  $("#events-chart").innerHTML = lineChart(stats.events.days, stats.events.series);
  $("#search").innerHTML = `<p>${search.searches} searches, ${search.clicks} clicks from search, CTR ${search.ctr}</p>
    <h3>Top queries</h3>${table(search.top_queries, ["query", "searches", "clicks", "ctr"])}
    <h3>Zero-result queries</h3>${table(search.zero_result_queries, ["query", "count"])}`;
  $("#versions").innerHTML = `<p>Serving <strong id="serving-version">${esc(versions.serving)}</strong></p>` +
    table(versions.versions.map((v) => ({ version: v.version, seconds: v.seconds, products: (v.counts || {}).products,
      events: (v.counts || {}).events, ranker: v.ranker.valid_ndcg10_ranker != null ? `NDCG ${v.ranker.valid_ndcg10_fusion} → ${v.ranker.valid_ndcg10_ranker}` : "" })),
      ["version", "seconds", "products", "events", "ranker"]) +
    "<h3>Builds</h3>" + table(builds.builds || [], ["id", "state", "version", "seconds", "error"]);
  $("#runs").innerHTML = table(runs.runs.slice(0, 20).map((r) => ({ kind: r.kind, name: r.name, when: r.created_at || r.time,
    metrics: Object.fromEntries(Object.entries(r.metrics || {}).filter(([, v]) => typeof v === "number").slice(0, 4)) })), ["kind", "name", "when", "metrics"]);
  const abRows = [];
  for (const [exp, arms] of Object.entries(experiments.results || {})) for (const [arm, c] of Object.entries(arms)) abRows.push({ experiment: exp, arm, ...c });
  $("#experiments").innerHTML = table(abRows, ["experiment", "arm", "users", "ctr_per_user", "conversion", "revenue_per_user"]);
  $("#rules").innerHTML = table(rules.rules.map((r) => ({ ...r, delete: r.id })), ["id", "query", "category", "action", "product_ids", "position"]) +
    rules.rules.map((r) => `<button class="del-rule" data-id="${esc(r.id)}">Delete ${esc(r.id)}</button>`).join(" ");
}

async function start() {
  try {
    await api("/v1/admin/stats");
  } catch (err) {
    $("#login-error").textContent = key ? `Key rejected (${err.message.slice(0, 60)})` : "";
    $("#login").hidden = false; $("#dashboard").hidden = true; return;
  }
  $("#login").hidden = true; $("#dashboard").hidden = false; $("#logout").hidden = false;
  await loadAll().catch((err) => { $("#tiles").innerHTML = `<p class="error">${esc(err.message)}</p>`; });
}

$("#login").addEventListener("submit", (e) => { e.preventDefault(); key = $("#key").value.trim(); sessionStorage.setItem("shoprec.adminKey", key); start(); });
$("#logout").addEventListener("click", () => { sessionStorage.removeItem("shoprec.adminKey"); key = ""; location.reload(); });
$("#rebuild").addEventListener("click", async () => {
  const status = await api("/v1/admin/build", { method: "POST" }).catch((err) => ({ state: err.message }));
  $("#build-status").textContent = `build ${status.id || ""}: ${status.state}`;
  const poll = setInterval(async () => {
    const list = await api("/v1/admin/builds").catch(() => ({ builds: [] }));
    const mine = (list.builds || []).find((b) => b.id === status.id);
    if (mine) $("#build-status").textContent = `build ${mine.id}: ${mine.state}${mine.version ? " → " + mine.version : ""}`;
    if (!mine || mine.state !== "running") { clearInterval(poll); loadAll(); }
  }, 2000);
});
$("#open-report").addEventListener("click", async () => {
  $("#report").srcdoc = await api("/v1/admin/report"); $("#report-panel").hidden = false;
});
$("#rule-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target), body = {};
  for (const [k, v] of f.entries()) if (v !== "") body[k] = v;
  body.product_ids = body.product_ids.split(",").map((s) => s.trim()).filter(Boolean);
  if (body.position) body.position = Number(body.position);
  if (body.weight) body.weight = Number(body.weight);
  await api(`/v1/admin/rules/${encodeURIComponent(body.id)}`, { method: "PUT", body: JSON.stringify(body) }).catch((err) => alert(err.message));
  loadAll();
});
document.addEventListener("click", async (e) => {
  const del = e.target.closest(".del-rule");
  if (del) { await api(`/v1/admin/rules/${encodeURIComponent(del.dataset.id)}`, { method: "DELETE" }); loadAll(); }
});
let currentUser = "";
$("#user-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  currentUser = new FormData(e.target).get("user");
  const profile = await api(`/v1/users/${encodeURIComponent(currentUser)}/profile`).catch((err) => ({ error: err.message }));
  $("#profile").textContent = JSON.stringify(profile, null, 2);
  $("#forget").hidden = false;
});
$("#forget").addEventListener("click", async () => {
  if (!confirm(`Forget ${currentUser} everywhere?`)) return;
  const res = await api(`/v1/admin/users/${encodeURIComponent(currentUser)}`, { method: "DELETE" }).catch((err) => ({ error: err.message }));
  $("#profile").textContent = JSON.stringify(res, null, 2);
});
start();
