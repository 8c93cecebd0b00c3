// The rollout page: polls /api/report and renders hosts × watches.
"use strict";

const maxRows = 500; // problem hosts first; the rest is counted
const revisionInput = document.getElementById("revision");

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function watchId(w) {
  return w.bucket + "/" + w.watch + (w.prefixes ? "[" + w.prefixes.join(",") + "]" : "");
}

function renderWatches(report) {
  const box = document.getElementById("watches");
  box.replaceChildren();
  for (const w of report.watches) {
    const hist = el("div", { class: "hist" });
    const top = Math.max(1, ...w.lags.map(b => b.count));
    for (const b of w.lags) {
      hist.append(el("span", {}, b.label),
        el("div", { class: b.max > 0 ? "bar lag" : "bar", style: "width:" + (100 * b.count / top) + "%" }),
        el("span", { class: "muted" }, String(b.count)));
    }
    box.append(el("div", { class: "watch", "data-watch": watchId(w) },
      el("h3", {}, w.watch + " ", el("span", { class: "muted" }, "bucket " + w.bucket)),
      el("div", { class: "summary" }, `${w.applied} of ${w.hosts} hosts at revision ≥ ${w.revision}; ` +
        `${w.ready} ready, ${w.failing.length} failing, ${w.held.length} held, ${w.silent.length} silent, ` +
        `${w.plugin_errors.length} whose plugin logged an error applying it`),
      el("div", { class: "muted" }, "lag (revisions behind) → hosts"), hist));
  }
}

function renderHosts(report) {
  const watches = report.watches.map(watchId);
  const head = document.getElementById("hosthead");
  head.replaceChildren(el("th", {}, "host"), ...report.watches.map(w => el("th", {}, w.watch + " (" + w.bucket + ")")));
  const hosts = new Map(); // host → {cells, score}
  report.watches.forEach((w, i) => {
    for (const h of w.all) {
      let row = hosts.get(h.host);
      if (!row) hosts.set(h.host, row = { cells: [], score: 0 });
      row.cells[i] = h;
      row.score = Math.max(row.score, h.lag + (h.state === "ready" ? 0 : 1e12) + (h.silent ? 1e12 : 0) + (h.plugin_error ? 0.5 : 0));
    }
  });
  const rows = [...hosts.entries()].sort((a, b) => b[1].score - a[1].score || a[0].localeCompare(b[0]));
  const body = document.getElementById("hostrows");
  body.replaceChildren(...rows.slice(0, maxRows).map(([name, row]) =>
    el("tr", { class: "host", "data-host": name }, el("th", {}, name),
      ...watches.map((id, i) => cell(row.cells[i], id)))));
  document.getElementById("hostcount").textContent = `(${hosts.size})`;
  const more = document.getElementById("more");
  more.hidden = rows.length <= maxRows;
  more.textContent = `… and ${rows.length - maxRows} more hosts, all further along`;
}

function cell(h, id) {
  if (!h) return el("td", { class: "cell muted" }, "—");
  const since = new Date(h.since).toLocaleTimeString();
  const behind = h.behind_since ? "\nbehind its bucket since " + new Date(h.behind_since).toLocaleTimeString() : "";
  const td = el("td", {
    class: "cell " + h.state + (h.silent ? " silent" : "") + (h.plugin_error ? " plugin-error" : ""), "data-watch": id,
    "data-revision": String(h.revision), "data-state": h.state,
    title: `${h.agent || ""} at revision ${h.revision} since ${since}${behind}${h.error ? "\n" + h.error : ""}` +
      (h.plugin_error ? "\nits plugin logged an error applying it: " + h.plugin_error : ""),
  }, `${h.revision}${h.lag ? " (−" + h.lag + ")" : ""} ${h.state}${h.silent ? " silent" : ""}${h.plugin_error ? " (plugin error)" : ""}`);
  return td;
}

async function refresh() {
  const err = document.getElementById("error");
  try {
    const q = revisionInput.value ? "?revision=" + encodeURIComponent(revisionInput.value) : "";
    const resp = await fetch("api/report" + q, { cache: "no-store" });
    if (!resp.ok) throw new Error(resp.status + " " + (await resp.text()));
    const report = await resp.json();
    renderWatches(report);
    renderHosts(report);
    document.getElementById("updated").textContent = "updated " + new Date(report.time).toLocaleTimeString();
    err.hidden = true;
  } catch (e) {
    err.textContent = "cannot read the report: " + e.message;
    err.hidden = false;
  }
}

document.getElementById("target").addEventListener("submit", e => { e.preventDefault(); refresh(); });
refresh();
setInterval(refresh, 1000);
