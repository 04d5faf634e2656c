// The reports page: filters, KPI tiles, a daily chart, breakdowns per driver, hub and
// partner, failures per reason, the orders behind any figure, and CSV downloads.
// Everything comes from /api/v1/reports/ (docs/reports.md defines the figures); the
// filters live in the page's URL so a view can be shared as a link.

import { html, render, useEffect, useRef, useState } from "preact-htm";

import { api, apiUrl, describeError } from "../common/api.js";
import { formatTime, formatWindow } from "../common/format.js";
import { DailyChart } from "./reports-chart.js";
import { DASH, count, daysBefore, minutes, number, rate } from "./reports-format.js";

const config = JSON.parse(document.getElementById("reports-config").textContent);
const tz = config.timezone;
const FILTER_KEYS = ["from", "to", "hub", "driver", "source"];
const PRESETS = [["7 days", 7], ["30 days", 30], ["90 days", 90], ["1 year", 365]];
const BREAKDOWNS = [["driver", "Drivers", "drivers"], ["hub", "Hubs", "hubs"], ["source", "Partners", "sources"]];

function filtersFromUrl() {
  const params = new URL(location.href).searchParams;
  const to = params.get("to") || config.today;
  const filters = { from: params.get("from") || daysBefore(to, 29), to };
  for (const key of ["hub", "driver", "source"]) filters[key] = params.get(key) || "";
  return filters;
}

function setUrl(filters) {
  const url = new URL(location.href);
  for (const key of FILTER_KEYS) {
    if (filters[key]) url.searchParams.set(key, filters[key]);
    else url.searchParams.delete(key);
  }
  history.replaceState(null, "", url);
}

function exportUrl(table, filters, extra = {}) {
  const params = { table, ...extra };
  for (const key of FILTER_KEYS) if (filters[key]) params[key] = filters[key];
  return apiUrl("reports/export/", params).toString();
}

function CsvLink({ table, filters, extra, label = "CSV" }) {
  return html`<a class="btn btn-small csv-link" href=${exportUrl(table, filters, extra)} download
                 data-testid=${`csv-${table}`}>${label} ↓</a>`;
}

// --- filters --------------------------------------------------------------------------

function Filters({ filters, options, onChange }) {
  const set = (key) => (event) => onChange({ ...filters, [key]: event.target.value });
  const preset = (days) => onChange({ ...filters, from: daysBefore(filters.to, days - 1) });
  const partner = options?.partner_source;
  return html`
    <section class="filters" aria-label="Filters">
      <label class="filter">From <input type="date" value=${filters.from} max=${filters.to} onChange=${set("from")}
        data-testid="filter-from" /></label>
      <label class="filter">To <input type="date" value=${filters.to} onChange=${set("to")} data-testid="filter-to" /></label>
      <div class="presets">
        ${PRESETS.map(([label, days]) => html`<button type="button" class="btn btn-small" onClick=${() => preset(days)}>${label}</button>`)}
      </div>
      <label class="filter">Hub
        <select value=${filters.hub} onChange=${set("hub")} data-testid="filter-hub">
          <option value="">All hubs</option>
          ${(options?.hubs || []).map((h) => html`<option value=${String(h.id)}>${h.label}</option>`)}
        </select>
      </label>
      ${!partner && html`
        <label class="filter">Driver
          <select value=${filters.driver} onChange=${set("driver")} data-testid="filter-driver">
            <option value="">All drivers</option>
            ${(options?.drivers || []).map((d) => html`<option value=${String(d.id)}>${d.label}</option>`)}
          </select>
        </label>`}
      <label class="filter">Partner
        <select value=${filters.source} onChange=${set("source")} disabled=${Boolean(partner)} data-testid="filter-source">
          ${!partner && html`<option value="">All partners</option>`}
          ${(options?.sources || []).map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </label>
      ${FILTER_KEYS.slice(2).some((k) => filters[k]) && html`
        <button type="button" class="btn btn-small btn-ghost" onClick=${() => onChange({ ...filters, hub: "", driver: "", source: "" })}>
          Clear filters</button>`}
    </section>`;
}

// --- tiles ----------------------------------------------------------------------------

function tiles(k, webhooks) {
  const r = k.routes;
  const topReason = Object.entries(k.failed_by_reason).sort((a, b) => b[1] - a[1]).find(([, n]) => n > 0);
  return [
    { id: "delivered", title: "Delivered", value: count(k.delivered), metric: "delivered",
      note: `of ${count(k.attempts)} attempts · ${rate(k.success_rate)} success` },
    { id: "on-time", title: "On time", value: rate(k.on_time_rate), metric: "late",
      note: `${count(k.late)} late · ${count(k.early)} early of ${count(k.windowed)} with a window` },
    { id: "first-attempt", title: "First-attempt success", value: rate(k.first_attempt_success_rate),
      metric: "first_attempt_failed", note: `${count(k.first_attempts)} first attempts` },
    { id: "failed", title: "Failed deliveries", value: count(k.failed), metric: "failed",
      note: topReason ? `most: ${topReason[0].replaceAll("_", " ")} (${count(topReason[1])})` : "none" },
    { id: "cancelled", title: "Cancelled", value: count(k.cancelled), metric: "cancelled", note: "before any attempt" },
    { id: "stops", title: "Stops per route", value: r ? number(r.stops_per_route) : DASH,
      note: r ? `${number(r.stops_per_hour)} per hour · ${count(r.routes)} routes` : "not shown per partner" },
    { id: "distance", title: "Distance, actual vs planned",
      value: r && r.actual_km !== null ? `${number(r.actual_km, "km")}` : DASH,
      note: r ? `planned ${number(r.tracked_planned_km, "km")} on ${count(r.tracked_routes)} tracked routes `
        + `(${number(r.planned_km, "km")} on all)` : "not shown per partner" },
    { id: "drive", title: "Drive time, actual vs planned",
      value: r && r.actual_drive_h !== null ? number(r.actual_drive_h, "h") : DASH,
      note: r ? `planned ${number(r.tracked_planned_drive_h, "h")} on tracked routes (${number(r.planned_drive_h, "h")} on all)`
        : "not shown per partner" },
    { id: "eta", title: "ETA error (mean · p90)", value: `${minutes(k.eta_mean_error_s)} · ${minutes(k.eta_p90_error_s)}`,
      metric: "eta_samples", note: `${count(k.eta_samples)} predicted arrivals` },
    { id: "pod", title: "POD compliance", value: rate(k.pod_compliance), metric: "pod_required",
      note: `${count(k.pod_complete)} of ${count(k.pod_required)} deliveries with every required proof` },
    { id: "webhooks", title: "Webhook delivery", value: webhooks.available ? rate(webhooks.success_rate) : "n/a",
      note: webhooks.available ? `${count(webhooks.succeeded)} of ${count(webhooks.attempted)}` : webhooks.reason },
  ];
}

function Tiles({ body, onDrill, drillMetric }) {
  return html`
    <section class="tiles" aria-label="Key figures">
      ${tiles(body.kpis, body.webhooks).map((t) => html`
        <button type="button" class=${`tile ${t.metric ? "is-drillable" : ""} ${drillMetric === t.metric ? "is-selected" : ""}`}
                data-testid=${`tile-${t.id}`} disabled=${!t.metric}
                title=${t.metric ? "Show the orders behind this figure" : ""}
                onClick=${() => t.metric && onDrill(t.metric, t.title)}>
          <span class="tile-title">${t.title}</span>
          <span class="tile-value" data-testid="tile-value">${t.value}</span>
          <span class="tile-note">${t.note}</span>
        </button>`)}
    </section>`;
}

// --- chart ----------------------------------------------------------------------------

function Chart({ series, onSelectDay }) {
  const canvas = useRef(null);
  const chart = useRef(null);
  useEffect(() => {
    chart.current = new DailyChart(canvas.current, { onSelectDay });
    return () => chart.current.destroy();
  }, []);
  useEffect(() => { if (series) chart.current.update(series); }, [series]);
  return html`<div class="chart-box"><canvas ref=${canvas} data-testid="daily-chart"
    aria-label="Delivered and failed attempts per day, and the on-time rate"></canvas></div>`;
}

// --- tables ---------------------------------------------------------------------------

function Breakdown({ by, setBy, rows, filters, onPick, partner }) {
  const choices = BREAKDOWNS.filter(([key]) => !(partner && key === "driver"));
  const table = BREAKDOWNS.find(([key]) => key === by)[2];
  return html`
    <section class="card">
      <header class="card-head">
        <div class="tabs" role="tablist">
          ${choices.map(([key, label]) => html`<button type="button" role="tab" aria-selected=${key === by}
            class=${`tab ${key === by ? "is-active" : ""}`} onClick=${() => setBy(key)}>${label}</button>`)}
        </div>
        <${CsvLink} table=${table} filters=${filters} />
      </header>
      <table class="grid" data-testid="breakdown">
        <thead><tr><th></th><th>Attempts</th><th>Delivered</th><th>On time</th><th>1st attempt</th><th>Failed</th>
          <th>Cancelled</th><th>Stops/route</th><th>Stops/h</th></tr></thead>
        <tbody>
          ${(rows || []).map((r) => html`
            <tr data-testid="breakdown-row" class="is-clickable" title="Filter by this"
                onClick=${() => r.key !== null && onPick(by, String(r.key))}>
              <th scope="row">${r.label}</th><td>${count(r.attempts)}</td><td>${count(r.delivered)}</td>
              <td>${rate(r.on_time_rate)}</td><td>${rate(r.first_attempt_success_rate)}</td><td>${count(r.failed)}</td>
              <td>${count(r.cancelled)}</td><td>${r.routes ? number(r.routes.stops_per_route) : DASH}</td>
              <td>${r.routes ? number(r.routes.stops_per_hour) : DASH}</td>
            </tr>`)}
          ${rows && !rows.length && html`<tr><td colspan="9" class="muted">Nothing in this range.</td></tr>`}
        </tbody>
      </table>
    </section>`;
}

function Reasons({ rows, filters, onDrill }) {
  return html`
    <section class="card">
      <header class="card-head"><h2>Failed deliveries by reason</h2><${CsvLink} table="reasons" filters=${filters} /></header>
      <table class="grid" data-testid="reasons">
        <thead><tr><th>Reason</th><th>Failed</th><th>Share</th></tr></thead>
        <tbody>
          ${(rows || []).filter((r) => r.failed > 0).map((r) => html`
            <tr class="is-clickable" data-testid="reason-row" onClick=${() => onDrill(`failed:${r.key}`, `Failed: ${r.label}`)}>
              <th scope="row">${r.label}</th><td>${count(r.failed)}</td><td>${rate(r.share)}</td></tr>`)}
          ${rows && !rows.some((r) => r.failed > 0) && html`<tr><td colspan="3" class="muted">No failed deliveries.</td></tr>`}
        </tbody>
      </table>
    </section>`;
}

function Drill({ drill, filters, onMore, onClose }) {
  if (!drill) return null;
  return html`
    <section class="card drill" data-testid="drill">
      <header class="card-head">
        <h2>${drill.title} <span class="muted">· the orders behind the figure</span></h2>
        <div class="card-actions">
          <${CsvLink} table="orders" filters=${filters} extra=${{ metric: drill.metric }} />
          <button type="button" class="btn btn-small btn-ghost" onClick=${onClose}>Close</button>
        </div>
      </header>
      ${drill.error && html`<p class="alert alert-error">${drill.error}</p>`}
      <table class="grid">
        <thead><tr><th>Order</th><th>Partner</th><th>Customer</th><th>Day</th><th>Hub</th><th>Driver</th>
          <th>Attempt</th><th>Outcome</th><th>Window</th><th>Arrival</th><th>Punctuality</th><th>ETA error</th>
          <th>Missing proof</th></tr></thead>
        <tbody>
          ${drill.rows.map((r) => html`
            <tr data-testid="drill-row">
              <th scope="row">${r.reference || r.external_id}</th><td>${r.source}</td><td>${r.customer_name}</td>
              <td>${r.day || DASH}</td><td>${r.hub || DASH}</td><td>${r.driver || DASH}</td><td>${r.attempt || DASH}</td>
              <td>${r.outcome}${r.failure_reason ? ` (${r.failure_reason.replaceAll("_", " ")})` : ""}</td>
              <td>${r.window_start || r.window_end ? formatWindow(r.window_start, r.window_end, tz) : DASH}</td>
              <td>${r.arrival ? formatTime(r.arrival, tz) : DASH}</td><td>${r.punctuality?.replace("_", " ") || DASH}</td>
              <td>${minutes(r.eta_error_s)}</td><td>${r.pod_missing.length ? r.pod_missing.join(", ") : DASH}</td>
            </tr>`)}
          ${!drill.loading && !drill.rows.length && html`<tr><td colspan="13" class="muted">No orders.</td></tr>`}
        </tbody>
      </table>
      ${drill.next && html`<button type="button" class="btn btn-small" disabled=${drill.loading} onClick=${onMore}>
        ${drill.loading ? "Loading…" : "Load more"}</button>`}
    </section>`;
}

// --- the page -------------------------------------------------------------------------

function params(filters) {
  const out = {};
  for (const key of FILTER_KEYS) if (filters[key]) out[key] = filters[key];
  return out;
}

function App() {
  const [filters, setFilters] = useState(filtersFromUrl);
  const [options, setOptions] = useState(null);
  const [data, setData] = useState(null);
  const [by, setBy] = useState("driver");
  const [breakdown, setBreakdown] = useState(null);
  const [drill, setDrill] = useState(null);
  const [error, setError] = useState("");
  const [loading, setLoading] = useState(true);
  const generation = useRef(0);

  useEffect(() => {
    api("reports/options/").then((o) => {
      setOptions(o);
      if (o.partner_source) setBy("hub");
    }).catch((e) => setError(describeError(e)));
  }, []);

  useEffect(() => {
    setUrl(filters);
    const mine = ++generation.current;
    setLoading(true);
    const p = params(filters);
    Promise.all([
      api("reports/kpis/", { params: p }),
      api("reports/series/", { params: p }),
      api("reports/breakdown/", { params: { ...p, by: "reason" } }),
    ]).then(([kpis, series, reasons]) => {
      if (mine !== generation.current) return;
      setData({ kpis, series: series.results, reasons: reasons.results });
      setError("");
    }).catch((e) => mine === generation.current && setError(describeError(e)))
      .finally(() => mine === generation.current && setLoading(false));
  }, [filters]);

  useEffect(() => {
    setBreakdown(null);
    api("reports/breakdown/", { params: { ...params(filters), by } })
      .then((b) => setBreakdown(b.results)).catch((e) => setError(describeError(e)));
  }, [filters, by]);

  const loadDrill = (metric, title, cursor = null, previous = []) => {
    setDrill({ metric, title, rows: previous, next: cursor, loading: true });
    const request = cursor ? api(cursor) : api("reports/orders/", { params: { ...params(filters), metric, page_size: 50 } });
    request.then((page) => setDrill({ metric, title, rows: [...previous, ...page.results], next: page.next, loading: false }))
      .catch((e) => setDrill({ metric, title, rows: previous, next: null, loading: false, error: describeError(e) }));
  };

  // A drill-down follows the filters it was opened with.
  useEffect(() => { if (drill) loadDrill(drill.metric, drill.title); }, [filters]);

  const change = (next) => setFilters(next);
  const pick = (key, value) => setFilters({ ...filters, [key]: value });
  const stale = data?.kpis.freshness?.stale_days;

  return html`
    <${Filters} filters=${filters} options=${options} onChange=${change} />
    ${error && html`<p class="alert alert-error" role="alert" data-testid="reports-error">${error}</p>`}
    <div class=${`reports-content ${loading ? "is-loading" : ""}`} aria-busy=${loading}>
      ${data && html`
        <p class="freshness muted" data-testid="freshness">
          ${filters.from} to ${filters.to}${stale ? ` · ${stale} day(s) being updated` : ""}
          <${CsvLink} table="summary" filters=${filters} label="All figures CSV" />
        </p>
        <${Tiles} body=${data.kpis} drillMetric=${drill?.metric} onDrill=${(m, t) => loadDrill(m, t)} />
        <${Drill} drill=${drill} filters=${filters} onClose=${() => setDrill(null)}
          onMore=${() => loadDrill(drill.metric, drill.title, drill.next, drill.rows)} />
        <section class="card">
          <header class="card-head"><h2>Per day</h2><${CsvLink} table="daily" filters=${filters} /></header>
          <${Chart} series=${data.series} onSelectDay=${(day) => setFilters({ ...filters, from: day, to: day })} />
        </section>
        <div class="two-columns">
          <${Breakdown} by=${by} setBy=${setBy} rows=${breakdown} filters=${filters} onPick=${pick}
            partner=${options?.partner_source} />
          <${Reasons} rows=${data.reasons} filters=${filters} onDrill=${(m, t) => loadDrill(m, t)} />
        </div>`}
    </div>`;
}

const root = document.getElementById("reports");
root.textContent = ""; // the server's "Loading…"
render(html`<${App} />`, root);
