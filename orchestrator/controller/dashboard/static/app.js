// The orchestrator dashboard: a read-only view of one controller, polled from the same origin.
//
// Rules this file keeps (the server's Content-Security-Policy enforces most of them):
// - no network request but GET to this origin's api/ (relative URLs, so a path prefix works);
// - every string from the controller (manifest values, diagnostics, worker output, events) goes
//   into the page with textContent / createTextNode / setAttribute on a plain attribute, never
//   innerHTML;
// - no inline styles: classes, or element.style.x (CSSOM) for computed widths;
// - no globals: everything lives in this closure.
"use strict";

(() => {
  const POLL_MS = 1000;
  const WINDOW_S = 300; // what the charts show: the last 5 minutes
  const SAMPLE_S = 2; // the spacing of samples this page computes itself (no api/history)
  const MAX_EVENTS = 200;
  const PLAN_EVERY_TICKS = 10;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const CHART_W = 200;
  const CHART_H = 40;
  const STATUS_CLASSES = ["2xx", "3xx", "4xx", "5xx"];

  const page = {
    status: null,
    eventsSeq: 0,
    events: [], // oldest first, at most MAX_EVENTS
    lastReload: null, // the last reload_outcome / manifest_rejected event
    controllerStart: null, // the controller_start event, when still in the ring
    session: "",
    // Per URL group, samples {t, rps, p50_ms, p99_ms, status}: from api/history when the server
    // keeps it, else computed here from the listener's counters since the page was opened.
    series: new Map(),
    historySource: "unknown", // "server" | "page"
    end: 0, // the charts' right edge: the newest server sample's time, or this page's clock
    historyMissing: false,
    planMissing: false,
    planGeneration: null,
    previousCounters: null, // {t, groups: Map name -> counters} for the page's own samples
    ticks: 0,
    polls: 0, // polls that succeeded (body[data-polls], for whoever waits on the page)
  };

  // ---- small DOM helpers -------------------------------------------------------------------

  const $ = (selector, root = document) => root.querySelector(selector);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    return node;
  }

  /** Set a node's text only when it changed (keeps selections and avoids needless layout). */
  function setText(node, value) {
    const text = value === undefined || value === null || value === "" ? "-" : String(value);
    if (node && node.textContent !== text) node.textContent = text;
  }

  function setField(root, cls, value) {
    setText($(`.${cls}`, root), value);
  }

  /**
   * Make tbody's rows match items, reusing a row per key (data-key), in the items' order.
   * create(item) returns a new <tr>; update(tr, item) fills it.
   */
  function syncRows(tbody, items, key, create, update) {
    const existing = new Map();
    for (const row of Array.from(tbody.rows)) existing.set(row.dataset.key, row);
    let cursor = tbody.firstElementChild;
    for (const item of items) {
      const k = key(item);
      let row = existing.get(k);
      if (row) existing.delete(k);
      else {
        row = create(item);
        row.dataset.key = k;
      }
      update(row, item);
      if (row !== cursor) tbody.insertBefore(row, cursor);
      else cursor = cursor.nextElementSibling;
    }
    for (const row of existing.values()) row.remove();
  }

  function cells(row, classes) {
    for (const cls of classes) row.append(el("td", cls));
    return row;
  }

  // ---- formatting --------------------------------------------------------------------------

  const asList = (value) => (Array.isArray(value) ? value : []);
  const asObject = (value) => (value && typeof value === "object" && !Array.isArray(value) ? value : {});
  const nowS = () => Date.now() / 1000;

  function ago(seconds) {
    const s = Number(seconds);
    if (!Number.isFinite(s) || s < 0) return "-";
    if (s < 60) return `${Math.floor(s)}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${Math.floor(s % 60)}s`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
    return `${(s / 86400).toFixed(1)}d`;
  }

  function clock(epochS) {
    const t = Number(epochS);
    if (!Number.isFinite(t) || t <= 0) return "-";
    const d = new Date(t * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    return (
      `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
    );
  }

  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

  const timeOfDay = (epochS) => clock(epochS).slice(11) || "-";

  function ms(value) {
    if (value === null || value === undefined || !Number.isFinite(Number(value))) return "-";
    const v = Number(value);
    return v >= 100 ? `${v.toFixed(0)} ms` : `${v.toFixed(1)} ms`;
  }

  function rate(value) {
    if (value === null || value === undefined || !Number.isFinite(Number(value))) return "-";
    const v = Number(value);
    return v >= 100 ? v.toFixed(0) : v.toFixed(1);
  }

  function byReason(counts) {
    const parts = Object.entries(asObject(counts))
      .filter(([reason, n]) => !reason.startsWith("_") && Number(n) > 0)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([reason, n]) => `${reason} ${n}`);
    return parts.length ? parts.join(", ") : "none";
  }

  // ---- fetching ----------------------------------------------------------------------------

  class Missing extends Error {}

  async function getJSON(path) {
    const response = await fetch(path, {
      cache: "no-store",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (response.status === 404) throw new Missing(path);
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  // ---- the listener's counters, summed over its processes ------------------------------------

  function groupCounters(status) {
    const totals = new Map();
    const listener = asObject(status.listener);
    for (const proc of asList(listener.stats)) {
      for (const [name, g] of Object.entries(asObject(asObject(proc).groups))) {
        const c = totals.get(name) || { status: {}, latency: [], bounds: [], completed: 0 };
        for (const [cls, n] of Object.entries(asObject(g.status))) {
          c.status[cls] = (c.status[cls] || 0) + Number(n);
          c.completed += Number(n);
        }
        asList(g.latency).forEach((n, i) => {
          c.latency[i] = (c.latency[i] || 0) + Number(n);
        });
        if (asList(g.latency_ms_buckets).length) c.bounds = asList(g.latency_ms_buckets).map(Number);
        totals.set(name, c);
      }
    }
    return totals;
  }

  function queueCounters(status) {
    const totals = new Map();
    for (const proc of asList(asObject(status.listener).stats)) {
      for (const [name, q] of Object.entries(asObject(asObject(proc).queues))) {
        const c = totals.get(name) || { inflight: 0, requests: 0, refused: {} };
        c.inflight += Number(q.inflight) || 0;
        c.requests += Number(q.requests) || 0;
        for (const [reason, n] of Object.entries(asObject(q.refused))) {
          c.refused[reason] = (c.refused[reason] || 0) + Number(n);
        }
        totals.set(name, c);
      }
    }
    return totals;
  }

  /** The q-quantile of a latency histogram (the upper bound of the bucket it falls in). */
  function quantile(counts, bounds, q) {
    const total = counts.reduce((a, b) => a + b, 0);
    if (!total || !bounds.length) return null;
    let seen = 0;
    for (let i = 0; i < counts.length; i += 1) {
      seen += counts[i];
      if (seen >= q * total) return bounds[Math.min(i, bounds.length - 1)];
    }
    return bounds[bounds.length - 1];
  }

  /** Without api/history: one sample per group every SAMPLE_S from counter deltas. */
  function samplePage(status) {
    const t = nowS();
    const current = groupCounters(status);
    const previous = page.previousCounters;
    if (previous && t - previous.t < SAMPLE_S) return;
    page.previousCounters = { t, groups: current };
    if (!previous) return;
    const dt = t - previous.t;
    for (const [name, c] of current) {
      const p = previous.groups.get(name);
      // A counter that went down means the listener restarted: count from zero.
      const reset = !p || c.completed < p.completed;
      const delta = (now, before) => (reset ? now : Math.max(0, now - (before || 0)));
      const statusDelta = {};
      for (const cls of Object.keys(c.status)) statusDelta[cls] = delta(c.status[cls], p && p.status[cls]);
      const latency = c.latency.map((n, i) => delta(n, p && p.latency[i]));
      const samples = page.series.get(name) || [];
      samples.push({
        t,
        rps: delta(c.completed, p && p.completed) / dt,
        p50_ms: quantile(latency, c.bounds, 0.5),
        p99_ms: quantile(latency, c.bounds, 0.99),
        status: statusDelta,
      });
      while (samples.length && samples[0].t < t - WINDOW_S) samples.shift();
      page.series.set(name, samples);
    }
  }

  // ---- rendering: overview -----------------------------------------------------------------

  function sessionName(status) {
    const s = status.session;
    if (typeof s === "string" && s) return s;
    if (s && typeof s === "object" && s.name) return String(s.name);
    return page.session;
  }

  function renderOverview(status) {
    const root = $("#overview");
    const manifest = asObject(status.manifest);
    const session = sessionName(status);
    setField(root, "session", session);
    setText($("#title-session"), session ? `— ${session}` : "");
    if (session) document.title = `${session} — orchestrator dashboard`;
    setField(root, "backend", status.backend);
    setField(root, "controller", `pid ${status.pid}, ${status.state}${status.root ? ", root" : ""}`);
    const sha = String(manifest.sha256 || "");
    const desired = String(manifest.desired_sha256 || "");
    const hash = $(".manifest-hash", root);
    setText(
      hash,
      (sha ? sha.slice(0, 12) : "none applied yet") +
        (desired && desired !== sha ? ` (converging to ${desired.slice(0, 12)})` : ""),
    );
    hash.title = sha;
    setField(root, "manifest-path", manifest.path);
    setField(root, "generation", status.generation);
    setField(root, "since", manifest.since ? `${clock(manifest.since)} (${ago(nowS() - manifest.since)} ago)` : "-");
    const started = Number(status.started) || Number(page.controllerStart && page.controllerStart.ts);
    const uptime = Number.isFinite(Number(status.uptime_s)) ? Number(status.uptime_s) : started ? nowS() - started : NaN;
    setField(root, "uptime", ago(uptime));
    setField(root, "last-reload", describeReload(page.lastReload, manifest, status.rejected));
    const reconcile = asObject(status.reconcile);
    const failed = asList(reconcile.failed);
    setField(
      root,
      "reconcile",
      `${plural(Number(reconcile.passes) || 0, "pass", "passes")}; ` +
        `${reconcile.converged ? "converged" : "not converged"}` +
        (failed.length ? `; ${failed.length} failed` : ""),
    );
    const lastReload = $(".last-reload", root);
    lastReload.dataset.outcome = page.lastReload ? String(page.lastReload.outcome || page.lastReload.event) : "";

    renderFailing(status, failed);
    renderRejected(status.rejected);
    const drift = asList(status.drift);
    $("#drift").hidden = drift.length === 0;
    syncList($(".drift-list"), drift.map((d) => `${d.address}  ${d.reason}: ${d.detail}`));
  }

  function describeReload(event, manifest, rejected) {
    if (!event) {
      return manifest.since ? `initial load, ${clock(manifest.since)}` : "none yet";
    }
    const when = clock(event.ts);
    if (event.event === "manifest_rejected") {
      // status drops `rejected` once the files are the manifest in force again (edit undone).
      const still = rejected && typeof rejected === "object";
      return (
        `rejected (${event.stage || "load"}) manifest ${event.manifest || ""} at ${when}; ` +
        (still ? `kept ${event.keeping || "-"}` : "no longer pending")
      );
    }
    const outcome = String(event.outcome || "");
    const source = event.source ? ` (${event.source})` : "";
    if (outcome === "applied") {
      const s = asObject(event.summary);
      const counts = Object.keys(s).length
        ? `: ${s.add ?? 0} added, ${s.change ?? 0} changed, ${s.replace ?? 0} replaced, ${s.destroy ?? 0} destroyed`
        : "";
      return `applied manifest ${event.manifest || ""}${source} at ${when}${counts}`;
    }
    return `${outcome.replace(/_/g, " ")} manifest ${event.manifest || ""}${source} at ${when}: ${event.error || ""}`;
  }

  function syncList(list, texts) {
    const items = Array.from(list.children);
    texts.forEach((text, i) => {
      const li = items[i] || list.appendChild(el("li"));
      setText(li, text);
    });
    for (const extra of items.slice(texts.length)) extra.remove();
  }

  function renderFailing(status, failed) {
    const lines = failed.map((f) => `${f.step}: ${f.error}`);
    for (const [name, info] of Object.entries(asObject(status.pools))) {
      if (info && info.halted) lines.push(`worker/${name} stopped: ${info.halted}`);
    }
    $("#failing").hidden = lines.length === 0;
    syncList($(".failing-list"), lines);
  }

  function renderRejected(rejected) {
    const box = $("#rejected");
    if (!rejected || typeof rejected !== "object") {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    setText($(".rejected-sha", box), String(rejected.sha256 || "").split("@", 1)[0].slice(0, 12));
    const warnings = Number(rejected.warnings) || 0;
    setText(
      $(".rejected-summary", box),
      `${rejected.stage === "apply" ? "failed to apply" : "failed to load"} at ${clock(rejected.at)}` +
        (warnings ? ` (${warnings} warning${warnings === 1 ? "" : "s"})` : "") +
        "; the manifest in force keeps running.",
    );
    const errors = asList(rejected.errors).map(String);
    if (!errors.length && rejected.error) errors.push(String(rejected.error));
    const list = $(".diagnostics", box);
    const key = JSON.stringify(errors);
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    list.replaceChildren(...errors.map(diagnostic));
  }

  /** One rendered diagnostic: its file:line:col location picked out, the rest as text. */
  function diagnostic(text) {
    const li = el("li", "diagnostic");
    const [first, ...detail] = text.split("\n");
    const match = /^(warning: )?([^\s:][^\s]*?:\d+(?::\d+)?)(.*)$/s.exec(first);
    const head = el("span", "summary");
    if (match) {
      if (match[1]) head.append(el("span", "severity", match[1]));
      head.append(el("code", "location", match[2]), document.createTextNode(match[3]));
    } else {
      head.textContent = first;
    }
    if (first.startsWith("warning: ") || first.includes(": warning: ")) li.classList.add("warning");
    li.append(head);
    if (detail.length) li.append(el("pre", "detail", detail.join("\n")));
    return li;
  }

  // ---- rendering: URL groups, with charts ----------------------------------------------------

  function renderGroups(status) {
    const groups = asList(status.urlGroups);
    const tbody = $("#groups tbody");
    syncRows(
      tbody,
      groups,
      (g) => String(g.name),
      (g) => {
        const row = cells(el("tr"), ["name", "queue", "state", "urls", "rps num", "p50 num", "p99 num", "mix", "rate", "latency"]);
        row.dataset.group = String(g.name);
        row.querySelector("td.urls").append(el("ul", "plain"));
        row.querySelector("td.mix").append(chartSvg("mix-bar", g.name, 8));
        row.querySelector("td.mix").append(el("span", "mix-text"));
        row.querySelector("td.rate").append(chartSvg("chart-rate", g.name, CHART_H));
        row.querySelector("td.latency").append(chartSvg("chart-latency", g.name, CHART_H));
        return row;
      },
      (row, g) => {
        const name = String(g.name);
        setText(row.querySelector("td.name"), name);
        setText(row.querySelector("td.queue"), g.queue);
        const state = row.querySelector("td.state");
        setText(state, g.reason ? `${g.state}: ${g.reason}` : g.state);
        state.dataset.state = String(g.state);
        syncList(row.querySelector("td.urls ul"), asList(g.urls).map(String));
        const samples = windowOf(page.series.get(name) || []);
        const newest = samples[samples.length - 1];
        const last = isCurrent(newest) ? newest : null;
        setText(row.querySelector("td.rps"), last ? rate(last.rps) : page.historySource === "unknown" ? "-" : "0.0");
        setText(row.querySelector("td.p50"), last ? ms(last.p50_ms) : "-");
        setText(row.querySelector("td.p99"), last ? ms(last.p99_ms) : "-");
        drawMix(row.querySelector("svg.mix-bar"), row.querySelector(".mix-text"), samples);
        drawLines(row.querySelector("svg.chart-rate"), samples, [["rps", "rate"]], "req/s", `${name}: requests per second`);
        drawLines(
          row.querySelector("svg.chart-latency"),
          samples,
          [
            ["p50_ms", "p50"],
            ["p99_ms", "p99"],
          ],
          "ms",
          `${name}: latency p50 and p99`,
        );
      },
    );
  }

  function chartSvg(cls, group, height) {
    const node = svg("svg", {
      class: `chart ${cls}`,
      viewBox: `0 0 ${CHART_W} ${height}`,
      width: CHART_W,
      height,
      role: "img",
      "data-group": String(group),
    });
    node.append(svg("title"));
    return node;
  }

  /** Fresh enough to be "now": the newest sample is at most a few intervals old. */
  const isCurrent = (sample) => Boolean(sample) && page.end - sample.t < 3 * SAMPLE_S + 5;

  function windowOf(samples) {
    const end = page.end;
    return samples.filter((s) => s.t >= end - WINDOW_S);
  }

  /** Polylines (one per field) over the last WINDOW_S, a dot on the newest sample of each. */
  function drawLines(node, samples, fields, unit, label) {
    const end = page.end;
    const values = [];
    for (const s of samples) for (const [field] of fields) if (Number.isFinite(Number(s[field])) && s[field] !== null) values.push(Number(s[field]));
    const max = values.length ? Math.max(...values) : 0;
    const top = max > 0 ? max * 1.1 : 1;
    const x = (t) => (((t - (end - WINDOW_S)) / WINDOW_S) * (CHART_W - 4) + 2).toFixed(1);
    const y = (v) => (CHART_H - 2 - (v / top) * (CHART_H - 4)).toFixed(1);
    const title = node.firstElementChild;
    const parts = [svg("line", { class: "axis", x1: 0, y1: CHART_H - 1, x2: CHART_W, y2: CHART_H - 1 })];
    for (const [field, cls] of fields) {
      const points = samples
        .filter((s) => s[field] !== null && s[field] !== undefined && Number.isFinite(Number(s[field])))
        .map((s) => `${x(s.t)},${y(Number(s[field]))}`);
      if (!points.length) continue;
      parts.push(svg("polyline", { class: `line ${cls}`, points: points.join(" ") }));
      const [lx, ly] = points[points.length - 1].split(",");
      parts.push(svg("circle", { class: `dot ${cls}`, cx: lx, cy: ly, r: 2 }));
    }
    node.replaceChildren(title, ...parts);
    title.textContent = samples.length
      ? `${label}, last 5 minutes: ${samples.length} samples, peak ${rate(max)} ${unit}`
      : `${label}: no samples yet`;
    node.setAttribute("aria-label", title.textContent);
    node.dataset.count = String(samples.length);
    node.dataset.max = String(max);
  }

  /** A stacked bar of responses by status class over the window, and the counts as text. */
  function drawMix(node, textNode, samples) {
    const totals = {};
    for (const s of samples) {
      for (const [cls, n] of Object.entries(asObject(s.status))) totals[cls] = (totals[cls] || 0) + Number(n);
    }
    const sum = Object.values(totals).reduce((a, b) => a + b, 0);
    const title = node.firstElementChild;
    const parts = [];
    let offset = 0;
    for (const cls of STATUS_CLASSES.concat(Object.keys(totals).filter((c) => !STATUS_CLASSES.includes(c)))) {
      const n = totals[cls] || 0;
      if (!n) continue;
      const w = (n / sum) * CHART_W;
      parts.push(svg("rect", { class: `s${cls.charAt(0)}`, x: offset.toFixed(1), y: 0, width: w.toFixed(1), height: 8, "data-class": cls }));
      offset += w;
    }
    if (!parts.length) parts.push(svg("rect", { class: "empty", x: 0, y: 0, width: CHART_W, height: 8 }));
    node.replaceChildren(title, ...parts);
    const text = sum
      ? Object.entries(totals)
          .filter(([, n]) => n)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([cls, n]) => `${cls} ${n}`)
          .join(" · ")
      : "no responses";
    title.textContent = `status mix, last 5 minutes: ${text}`;
    node.setAttribute("aria-label", title.textContent);
    setText(textNode, text);
  }

  // ---- rendering: queues, pools, listener ----------------------------------------------------

  function renderQueues(status) {
    const counters = queueCounters(status);
    syncRows(
      $("#queues tbody"),
      asList(status.queues),
      (q) => String(q.name),
      () => {
        const row = cells(el("tr"), ["name", "state", "load", "requests num", "refused", "path"]);
        const load = row.querySelector("td.load");
        const meter = el("span", "meter");
        meter.append(el("span", "meter-fill"));
        load.append(meter, el("span", "load-text"));
        return row;
      },
      (row, q) => {
        const c = counters.get(String(q.name)) || { inflight: 0, requests: 0, refused: {} };
        const max = Number(q.backlog) || 0;
        setText(row.querySelector("td.name"), q.name);
        const state = row.querySelector("td.state");
        setText(state, q.state);
        state.dataset.state = String(q.state);
        row.dataset.inflight = String(c.inflight);
        const clamped = q.clamped_from ? ` (asked ${q.clamped_from}, clamped by somaxconn)` : "";
        setText(row.querySelector(".load-text"), `${c.inflight} / ${max || "-"}${clamped}`);
        const fill = row.querySelector(".meter-fill");
        const share = max ? Math.min(1, c.inflight / max) : 0;
        fill.style.width = `${(share * 100).toFixed(1)}%`;
        fill.classList.toggle("high", share >= 0.8);
        setText(row.querySelector("td.requests"), c.requests);
        setText(row.querySelector("td.refused"), byReason(c.refused));
        setText(row.querySelector("td.path"), q.path);
      },
    );
  }

  function renderPools(status) {
    const rows = asList(status.workers).map((w) => ({ kind: "worker", ...w }));
    for (const [name, info] of Object.entries(asObject(status.pools)).sort(([a], [b]) => a.localeCompare(b))) {
      if (info && info.halted) rows.push({ kind: "halted", pool: name, ...info });
    }
    rows.sort((a, b) => String(a.pool).localeCompare(String(b.pool)) || (a.slot ?? 0) - (b.slot ?? 0));
    syncRows(
      $("#pools tbody"),
      rows,
      (r) => (r.kind === "halted" ? `halted:${r.pool}` : `pid:${r.pid}`),
      () => cells(el("tr"), ["pool", "pid num", "user", "state", "uptime num", "restarts num", "health", "last-exit"]),
      (row, r) => {
        row.dataset.pool = String(r.pool);
        setText(row.querySelector("td.pool"), r.pool);
        if (r.kind === "halted") {
          row.classList.add("halted");
          row.dataset.pid = "";
          setText(row.querySelector("td.pid"), "-");
          setText(row.querySelector("td.user"), "-");
          setText(row.querySelector("td.state"), "STOPPED");
          row.querySelector("td.state").dataset.state = "halted";
          setText(row.querySelector("td.uptime"), "-");
          setText(row.querySelector("td.restarts"), r.restarts);
          setText(row.querySelector("td.health"), "-");
          setText(row.querySelector("td.last-exit"), `since ${clock(r.halted_since)}: ${r.halted}`);
          return;
        }
        row.dataset.pid = String(r.pid);
        setText(row.querySelector("td.pid"), r.pid);
        setText(row.querySelector("td.user"), r.user);
        setText(row.querySelector("td.state"), r.state);
        row.querySelector("td.state").dataset.state = String(r.state);
        setText(row.querySelector("td.uptime"), ago(r.uptime_s));
        setText(row.querySelector("td.restarts"), r.restarts);
        const probe = asObject(asObject(asObject(status.pools)[r.pool]).probe);
        const failures = Number(probe.failures) || 0;
        setText(row.querySelector("td.health"), (r.health || "-") + (failures ? ` (${failures} failed probes)` : ""));
        setText(row.querySelector("td.last-exit"), r.last_exit || "-");
      },
    );
  }

  function renderListener(status) {
    const root = $("#listener");
    const listener = status.listener;
    if (!listener || typeof listener !== "object") {
      for (const cls of ["pids", "user", "addresses", "core", "restarts", "connections", "accepted", "rps"]) setField(root, cls, "-");
      syncRows($("#listener-errors tbody"), [], String, () => el("tr"), () => {});
      return;
    }
    const stats = asList(listener.stats).map(asObject);
    setField(root, "pids", asList(listener.pids).join(", "));
    setField(root, "user", listener.user);
    const asked = new Map(asList(listener.endpoints).map((e) => [e.bound, e.address]));
    setField(
      root,
      "addresses",
      asList(listener.addresses)
        .map((a) => (String(asked.get(a) || "").endsWith(":0") ? `${a} (asked ${asked.get(a)})` : String(a)))
        .join(", "),
    );
    setField(root, "core", listener.core);
    setField(root, "restarts", listener.restarts ?? 0);
    setField(root, "connections", stats.reduce((n, s) => n + (Number(s.connections) || 0), 0));
    setField(root, "accepted", stats.reduce((n, s) => n + (Number(s.accepted) || 0), 0));
    let rps = 0;
    let any = false;
    for (const samples of page.series.values()) {
      const last = samples[samples.length - 1];
      if (isCurrent(last)) {
        rps += Number(last.rps) || 0;
        any = true;
      }
    }
    setField(root, "rps", any ? rate(rps) : "-");
    const errors = {};
    for (const s of stats) {
      for (const [reason, n] of Object.entries(asObject(s.errors))) {
        if (!reason.startsWith("_")) errors[reason] = (errors[reason] || 0) + Number(n);
      }
    }
    const entries = Object.entries(errors).sort(([a], [b]) => a.localeCompare(b));
    if (!entries.length) entries.push(["none", ""]);
    syncRows(
      $("#listener-errors tbody"),
      entries,
      ([reason]) => reason,
      () => {
        const row = el("tr");
        row.append(el("th", "reason"), el("td", "count num"));
        row.firstElementChild.scope = "row";
        return row;
      },
      (row, [reason, n]) => {
        setText(row.querySelector(".reason"), reason);
        setText(row.querySelector(".count"), n);
      },
    );
  }

  // ---- rendering: events and plan ------------------------------------------------------------

  function addEvents(events) {
    for (const e of events) {
      const seq = Number(e.seq) || 0;
      if (seq <= page.eventsSeq) continue;
      page.eventsSeq = seq;
      if (e.event === "controller_start") page.controllerStart = e;
      if (e.event === "reload_outcome" || e.event === "manifest_rejected") page.lastReload = e;
      page.events.push(e);
    }
    if (page.events.length > MAX_EVENTS) page.events.splice(0, page.events.length - MAX_EVENTS);
  }

  const BAD_EVENT = /fail|crash|halt|reject|refus|error|denied|unhealthy|rolled_back|rollback/;

  function renderEvents() {
    const newestFirst = page.events.slice().reverse();
    syncRows(
      $("#events-table tbody"),
      newestFirst,
      (e) => String(e.seq),
      (e) => {
        const row = cells(el("tr"), ["seq num", "time", "event", "details"]);
        row.dataset.event = String(e.event);
        if (BAD_EVENT.test(String(e.event))) row.classList.add("bad");
        setText(row.querySelector(".seq"), e.seq);
        setText(row.querySelector(".time"), timeOfDay(e.ts));
        setText(row.querySelector(".event"), e.event);
        const details = Object.entries(e)
          .filter(([k]) => k !== "seq" && k !== "ts" && k !== "event")
          .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
          .join("  ");
        setText(row.querySelector(".details"), details);
        return row;
      },
      () => {},
    );
  }

  function renderPlan(plan) {
    const pre = $("#plan .plan-text");
    const text = String(plan.text || "");
    if (pre.textContent !== text) pre.textContent = text || "(no plan yet)";
    setText($("#plan .plan-generation"), plan.generation !== undefined ? `(generation ${plan.generation})` : "");
    const session = /(?:^|\s)session\/(\S+)/m.exec(text);
    if (session && !page.session) page.session = session[1];
  }

  // ---- the poll loop -----------------------------------------------------------------------

  function setConnection(state, text) {
    const conn = $("#conn");
    conn.dataset.state = state;
    setText(conn, text);
  }

  async function pollHistory() {
    if (page.historyMissing) return;
    try {
      const history = await getJSON("api/history");
      page.historySource = "server";
      const groups = asObject(history.groups);
      page.series = new Map(Object.entries(groups).map(([name, samples]) => [name, asList(samples).map(asObject)]));
    } catch (error) {
      if (!(error instanceof Missing)) throw error;
      page.historyMissing = true;
      page.historySource = "page";
      const note = $(".history-note");
      note.hidden = false;
      note.textContent =
        "History: not available from this controller (api/history); the charts show what this page has seen since it was opened.";
    }
  }

  async function pollPlan(status) {
    if (page.planMissing) return;
    const generation = status ? status.generation : null;
    if (page.planGeneration !== null && generation === page.planGeneration && page.ticks % PLAN_EVERY_TICKS) return;
    try {
      const plan = asObject(await getJSON("api/plan"));
      page.planGeneration = generation;
      renderPlan(plan);
    } catch (error) {
      if (!(error instanceof Missing)) throw error;
      page.planMissing = true;
      setText($("#plan .plan-text"), "not available (this controller does not serve api/plan)");
    }
  }

  async function tick() {
    page.ticks += 1;
    try {
      const [status, events] = await Promise.all([
        getJSON("api/status"),
        getJSON(`api/events?since=${page.eventsSeq}`),
        pollHistory(),
      ]);
      page.status = asObject(status);
      addEvents(asList(asObject(events).events).map(asObject));
      await pollPlan(page.status);
      if (page.historySource === "page") samplePage(page.status);
      page.end = timeBase();
      render(page.status);
      setConnection("live", "live");
      setText($("#updated"), `Last update ${timeOfDay(nowS())}.`);
    } catch (error) {
      const unauthorized = /HTTP 401/.test(String(error && error.message));
      setConnection("error", unauthorized ? "unauthorized" : `disconnected, retrying (${error && error.message ? error.message : error})`);
    } finally {
      window.setTimeout(tick, POLL_MS);
    }
  }

  /** Server history is in the server's clock: the newest sample is "now" (up to an interval). */
  function timeBase() {
    if (page.historySource !== "server") return nowS();
    let newest = 0;
    for (const samples of page.series.values()) {
      const last = samples[samples.length - 1];
      if (last && Number(last.t) > newest) newest = Number(last.t);
    }
    return newest || nowS();
  }

  function render(status) {
    renderOverview(status);
    renderGroups(status);
    renderQueues(status);
    renderPools(status);
    renderListener(status);
    renderEvents();
    page.polls += 1;
    document.body.dataset.generation = String(status.generation ?? "");
    document.body.dataset.polls = String(page.polls);
    document.body.dataset.ready = "true";
  }

  // The script is deferred: the document is parsed by now.
  tick();
})();
