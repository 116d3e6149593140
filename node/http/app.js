// The status page: reads /cluster and /history from this node every 2 s and draws them. Everything
// is built with DOM calls (textContent, never innerHTML), so names from the cluster cannot inject
// markup; the charts are plain SVG.
"use strict";

const REFRESH_MS = 2000;
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : String(k));
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function size(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(Math.round(n))) + " " + u[i];
}

function rate(n) {
  if (n >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (n >= 1e3) return (n / 1e3).toFixed(1) + "k";
  return n >= 10 || n === 0 ? String(Math.round(n)) : n.toFixed(n < 1 ? 2 : 1);
}

function duration(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
  return Math.floor(s / 86400) + "d" + String(Math.floor(s % 86400 / 3600)).padStart(2, "0") + "h";
}

function rtt(us) {
  return us >= 1000 ? (us / 1000).toFixed(2) + " ms" : us + " µs";
}

function meter(cls, label, value, max, text) {
  const pct = max > 0 ? Math.min(100, 100 * value / max) : 0;
  const fill = el("div", { class: "fill" });
  fill.style.width = pct.toFixed(1) + "%";
  return el("div", { class: "meter " + cls },
    el("div", { class: "label" }, el("span", {}, label), el("span", {}, text)),
    el("div", { class: "track", role: "meter", "aria-valuenow": String(value),
      "aria-valuemax": String(max), "aria-label": label }, fill));
}

function nodeCard(n, maxChunks) {
  const card = el("div", { class: "card node", "data-node": n.name, "data-state": n.state });
  const state = el("span", { class: "badge state " + n.state }, n.state);
  card.append(el("h3", {}, el("span", { class: "name" }, n.name), state));
  let addr = "rpc " + n.address;
  card.append(el("div", { class: "addr" }, addr));
  if (n.http_address && n.http_address !== location.host) {
    const a = el("a", { href: "http://" + n.http_address + "/" }, "http " + n.http_address);
    card.lastChild.append(" · ", a);
  }
  if (!n.reachable) {
    card.append(el("div", { class: "err" }, n.error || "unreachable"));
    return card;
  }
  card.append(meter("memory", "memory", n.allocated, n.memory_max,
    size(n.allocated) + " of " + size(n.memory_max)));
  card.append(meter("chunks", "chunks", n.chunks, maxChunks, n.chunks + " (" + size(n.bytes) + ")"));
  const stats = el("div", { class: "stats" });
  const add = (k, v) => stats.append(el("span", {}, k + " ", el("b", {}, v)));
  add("uptime", duration(n.uptime_ms));
  add("handled", String(n.handled_total));
  add("auth failures", String(n.auth_failures));
  add("hello timeouts", String(n.hello_timeouts));
  add("conns in", String(n.conns_inbound));
  add("traffic", n.encrypted ? "encrypted" : n.authenticated ? "authenticated" : "open");
  card.append(stats);
  return card;
}

function renderCluster(c) {
  document.getElementById("cluster").textContent =
    c.cluster + " · " + c.replicas + " replicas · seen from " + c.self;
  document.title = (c.ready ? "" : "(not ready) ") + "aquifer " + c.cluster + " · " + c.self;
  const ready = document.getElementById("ready");
  ready.textContent = c.ready ? "ready" : "not ready";
  ready.className = "badge " + (c.ready ? "ready" : "not-ready");
  ready.title = c.ready ? "" : c.not_ready;
  document.getElementById("updated").textContent =
    "updated " + new Date(c.time_ms).toLocaleTimeString();
  const problem = document.getElementById("problem");
  problem.hidden = c.ready;
  problem.textContent = c.ready ? "" : "Not ready: " + c.not_ready;
  document.getElementById("reachable").textContent =
    c.reachable + " of " + c.nodes.length + " reachable";

  const maxChunks = Math.max(1, ...c.nodes.filter(n => n.reachable).map(n => n.chunks));
  document.getElementById("nodes").replaceChildren(...c.nodes.map(n => nodeCard(n, maxChunks)));

  const rows = [];
  for (const n of c.nodes) {
    for (const p of n.peers || []) {
      rows.push(el("tr", { class: "link" },
        el("td", {}, n.name), el("td", {}, p.name),
        el("td", {}, el("span", { class: "badge " + p.state }, p.state)),
        el("td", { class: "num" }, rtt(p.rtt_us)),
        el("td", { class: "num" }, String(p.calls)),
        el("td", { class: "num" }, String(p.retransmits)),
        el("td", { class: "num" }, String(p.busy_seen)),
        el("td", { class: "num" }, String(p.timeouts)),
        el("td", { class: "num" }, String(p.pipe_reconnects))));
    }
  }
  if (!rows.length) rows.push(el("tr", {}, el("td", { class: "empty", colspan: "9" }, "no links")));
  document.querySelector("#links tbody").replaceChildren(...rows);

  const frows = c.frames.map(f => el("tr", { class: "frame" },
    el("td", {}, f.name), el("td", { class: "num" }, String(f.rows)),
    el("td", { class: "num" }, String(f.columns)), el("td", { class: "num" }, String(f.chunks)),
    el("td", { class: "num" }, size(f.source_size))));
  if (!frows.length)
    frows.push(el("tr", {}, el("td", { class: "empty", colspan: "5" }, "no frames (aquifer parse FILE)")));
  document.querySelector("#frames tbody").replaceChildren(...frows);
  document.getElementById("frames-note").textContent =
    c.frames_partial ? "some nodes could not be asked: the list may be incomplete" : "";
}

// Rates between neighbouring samples of cumulative counters, per second.
function rates(h, key) {
  const out = [];
  for (let i = 1; i < h.t_ms.length; i++) {
    const dt = (h.t_ms[i] - h.t_ms[i - 1]) / 1000;
    const dv = h[key][i] - h[key][i - 1];
    out.push([h.t_ms[i], dt > 0 && dv >= 0 ? dv / dt : 0]);
  }
  return out;
}

// The smallest 1, 2 or 5 times a power of ten at or above v (1 for nothing), so that the four grid
// steps read as round numbers.
function niceCeil(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 4, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// A line chart of up to two series over the last 15 minutes, drawn into figure id.
function chart(id, series, labels, now, spanMs) {
  const fig = document.getElementById(id);
  const W = 600, H = 190, L = 52, R = 8, T = 8, B = 20;
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": fig.querySelector(".title").textContent });
  let max = 0;
  for (const ser of series) for (const [, v] of ser) max = Math.max(max, v);
  const top = niceCeil(max * 1.1);
  const x = t => L + (W - L - R) * (1 - (now - t) / spanMs);
  const y = v => T + (H - T - B) * (1 - v / top);
  for (let i = 0; i <= 4; i++) {
    const v = top * i / 4, yy = y(v);
    s.append(svg("line", { class: "grid", x1: L, x2: W - R, y1: yy, y2: yy }));
    const t = svg("text", { x: L - 4, y: yy + 3, "text-anchor": "end" });
    t.textContent = rate(v);
    s.append(t);
  }
  for (let m = 0; m <= 15; m += 5) {
    const t = svg("text", { x: x(now - m * 60000), y: H - 4, "text-anchor": m === 15 ? "start" : m ? "middle" : "end" });
    t.textContent = m ? "-" + m + "m" : "now";
    s.append(t);
  }
  series.forEach((ser, i) => {
    const pts = ser.filter(([t]) => now - t <= spanMs).map(([t, v]) => x(t).toFixed(1) + "," + y(v).toFixed(1));
    if (pts.length) s.append(svg("polyline", { class: "series s" + i, points: pts.join(" ") }));
  });
  const keys = fig.querySelector(".keys");
  keys.replaceChildren();
  labels.forEach((l, i) => {
    const last = series[i].length ? series[i][series[i].length - 1][1] : 0;
    const key = el("span", { class: "key" }, el("i", {}), l + " " + rate(last));
    key.firstChild.style.background = i ? "var(--c2)" : "var(--c1)";
    keys.append(key);
  });
  const old = fig.querySelector("svg");
  if (old) old.replaceWith(s); else fig.append(s);
}

function renderHistory(h) {
  document.getElementById("chart-node").textContent = "on " + h.node + ", one point per " + h.interval_ms / 1000 + " s";
  const span = h.length * h.interval_ms;
  const now = h.t_ms.length ? h.t_ms[h.t_ms.length - 1] : Date.now();
  chart("chart-calls", [rates(h, "handled"), rates(h, "calls")], ["handled", "made"], now, span);
  chart("chart-bytes", [rates(h, "bytes_in"), rates(h, "bytes_out")], ["in", "out"], now, span);
  chart("chart-retx", [rates(h, "retransmits"), rates(h, "busy")], ["retransmits", "BUSY"], now, span);
}

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": " + r.status + " " + (await r.text()).trim());
  return r.json();
}

async function refresh() {
  try {
    const [c, h] = await Promise.all([getJSON("/cluster"), getJSON("/history")]);
    renderCluster(c);
    renderHistory(h);
  } catch (e) {
    const p = document.getElementById("problem");
    p.hidden = false;
    p.textContent = "Cannot read this node's status: " + e.message;
    const ready = document.getElementById("ready");
    ready.textContent = "no answer";
    ready.className = "badge not-ready";
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

refresh();
