// Planning on the console: plan the day (progress while the job runs, the draft on the
// map, publish), report an exception, and review a replan's diff (who gets which stop,
// before/after distance, time and windows at risk) before applying it.
//
// A separate module with its own mount point (#planning-slot), so the live console
// (console.js) only has to announce its map ("console:map" event). Plans are polled:
// a draft is not on the road, so the live event stream does not carry it.

import * as L from "leaflet";
import { html, render, useEffect, useRef, useState } from "preact-htm";

import { api, apiList, describeError } from "../common/api.js";
import { formatTime } from "../common/format.js";

const config = JSON.parse(document.getElementById("console-config").textContent);
const tz = config.timezone;
const COLOURS = ["#2457d6", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#dc2626"];
const KINDS = [
  ["vehicle_breakdown", "Vehicle breakdown"], ["driver_unavailable", "Driver unavailable"],
  ["late_risk", "Driver running late"],
];
const POLL_MS = 500;

let leafletMap = null;
let draftLayer = null;
// The console draws on a canvas; drafts get their own SVG layer, so each dashed line
// is an element of its own (class draft-line) over the live routes.
let draftRenderer = null;
window.addEventListener("console:map", (event) => {
  leafletMap = event.detail.map;
  draftLayer = L.layerGroup().addTo(leafletMap);
  draftRenderer = L.svg({ padding: 0.5 });
});

function currentDate() {
  return document.getElementById("date-picker")?.value || config.today;
}

const km = (m) => `${(m / 1000).toFixed(1)} km`;
const hours = (s) => `${Math.floor(s / 3600)} h ${String(Math.round((s % 3600) / 60)).padStart(2, "0")} min`;

// Draft routes as dashed lines through numbered stops: a plan, not yet the road.
function drawDraft(routes) {
  if (!draftLayer) return;
  draftLayer.clearLayers();
  const bounds = [];
  routes.filter((r) => r.stops.length).forEach((route, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const points = [route.start_point, ...route.stops.map((s) => [s.lat, s.lng])];
    L.polyline(points, { color: colour, weight: 3, dashArray: "6 6", opacity: 0.9, renderer: draftRenderer,
                         className: "draft-line" }).addTo(draftLayer);
    route.stops.forEach((stop, n) => {
      L.circleMarker([stop.lat, stop.lng], { radius: 7, color: colour, weight: 2, fillColor: "#fff", fillOpacity: 1,
                                             renderer: draftRenderer, className: "draft-stop" })
        .bindTooltip(`${route.driver_name} · #${n + 1} · ${formatTime(stop.start, tz)}`)
        .addTo(draftLayer);
      bounds.push([stop.lat, stop.lng]);
    });
  });
  if (bounds.length && leafletMap) leafletMap.fitBounds(bounds, { padding: [40, 40] });
}

function clearDraft() {
  draftLayer?.clearLayers();
}

function Progress({ plan }) {
  const p = plan.progress || {};
  const total = plan.time_limit_s || 1;
  const left = p.time_left_s ?? total;
  const share = plan.status === "ready" ? 100 : Math.max(3, Math.min(100, 100 * (1 - left / total)));
  return html`
    <div class="plan-progress" data-testid="plan-progress">
      <div class="plan-bar"><span style=${`width:${share}%`}></span></div>
      <div class="muted">
        ${plan.stage}${p.best_cost != null ? html` · best so far ${hours(p.best_cost)} of driving` : null}
        ${plan.status === "running" ? html` · ${left.toFixed(1)} s left` : null}
      </div>
    </div>`;
}

function Draft({ plan, onPublish, onDiscard, busy }) {
  const draft = plan.result;
  const routes = draft.routes.filter((r) => r.stops.length);
  return html`
    <div data-testid="plan-draft">
      <p><strong>${draft.totals.stops}</strong> stops on <strong>${routes.length}</strong> routes,
        ${km(draft.totals.distance_m)}, ${hours(draft.totals.duration_s)} of driving
        <span class="muted">(${draft.engine}, ${draft.elapsed_s} s)</span></p>
      <ul class="plan-routes">
        ${routes.map((r, i) => html`
          <li key=${r.driver_id}><span class="swatch" style=${`background:${COLOURS[i % COLOURS.length]}`}></span>
            ${r.driver_name}: ${r.stops.length} stops, ${formatTime(r.start, tz)}–${formatTime(r.end, tz)}, ${km(r.distance_m)}</li>`)}
      </ul>
      ${draft.unassigned.length ? html`
        <div class="plan-unassigned" data-testid="plan-unassigned">
          <strong>${draft.unassigned.length} not planned</strong>
          <ul>${draft.unassigned.map((u) => html`<li key=${u.order_id}>Order ${u.order_id}: ${u.reason}</li>`)}</ul>
        </div>` : null}
      <div class="plan-actions">
        <button type="button" class="btn btn-primary" data-testid="plan-publish" disabled=${busy} onClick=${onPublish}>
          Publish ${routes.length} routes</button>
        <button type="button" class="btn btn-ghost" disabled=${busy} onClick=${onDiscard}>Discard</button>
      </div>
    </div>`;
}

function PlanDay({ hubs }) {
  const [hub, setHub] = useState(null);
  const [limit, setLimit] = useState(5);
  const [plan, setPlan] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(null);
  const timer = useRef(null);

  useEffect(() => { if (hubs.length && hub == null) setHub(hubs[0].id); }, [hubs]);
  useEffect(() => () => clearTimeout(timer.current), []);

  const poll = async (id) => {
    try {
      const next = await api(`plans/${id}/`);
      setPlan(next);
      if (next.status === "ready") drawDraft(next.result.routes);
      if (next.status === "queued" || next.status === "running") timer.current = setTimeout(() => poll(id), POLL_MS);
    } catch (err) {
      setError(describeError(err));
    }
  };
  const start = async () => {
    setError(null); setDone(null);
    try {
      const created = await api("plans/", { method: "POST", body: { hub: Number(hub), date: currentDate(), time_limit_s: Number(limit) } });
      setPlan(created);
      poll(created.id);
    } catch (err) {
      setError(describeError(err));
    }
  };
  const act = async (verb) => {
    setBusy(true);
    try {
      const next = await api(`plans/${plan.id}/${verb}/`, { method: "POST" });
      clearDraft();
      setDone(verb === "publish" ? `Published ${next.route_ids.length} routes.` : "Draft discarded.");
      setPlan(null);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  return html`
    <section class="plan-section" data-testid="plan-day">
      <h3 class="section-title">Plan the day</h3>
      ${!plan ? html`
        <div class="plan-form">
          <select aria-label="Hub" value=${hub ?? ""} onChange=${(e) => setHub(e.target.value)}>
            ${hubs.map((h) => html`<option value=${h.id}>${h.name}</option>`)}
          </select>
          <label class="muted">Time limit <input type="number" min="1" max="60" value=${limit} aria-label="Time limit in seconds"
            onInput=${(e) => setLimit(e.target.value)} /> s</label>
          <button type="button" class="btn btn-primary" data-testid="plan-start" disabled=${!hub} onClick=${start}>
            Optimize ${currentDate()}</button>
        </div>` : null}
      ${plan && plan.status !== "ready" && plan.status !== "failed" ? html`<${Progress} plan=${plan} />` : null}
      ${plan?.status === "failed" ? html`<p class="text-warn">The plan failed: ${plan.error}</p>` : null}
      ${plan?.status === "ready" ? html`<${Draft} plan=${plan} busy=${busy} onPublish=${() => act("publish")}
                                                  onDiscard=${() => act("discard")} />` : null}
      ${done ? html`<p class="muted" data-testid="plan-done">${done}</p>` : null}
      ${error ? html`<p class="text-warn" role="alert">${error}</p>` : null}
    </section>`;
}

function ReportException({ routes, onReported }) {
  const [route, setRoute] = useState("");
  const [kind, setKind] = useState(KINDS[0][0]);
  const [error, setError] = useState(null);
  const report = async () => {
    setError(null);
    try {
      await api("exceptions/", { method: "POST", body: { kind, route: Number(route) } });
      onReported();
    } catch (err) {
      setError(describeError(err));
    }
  };
  return html`
    <div class="plan-form" data-testid="report-exception">
      <select aria-label="Route" value=${route} onChange=${(e) => setRoute(e.target.value)}>
        <option value="">Route…</option>
        ${routes.map((r) => html`<option value=${r.id}>${r.name || `Route ${r.id}`}</option>`)}
      </select>
      <select aria-label="What happened" value=${kind} onChange=${(e) => setKind(e.target.value)}>
        ${KINDS.map(([k, label]) => html`<option value=${k}>${label}</option>`)}
      </select>
      <button type="button" class="btn" data-testid="report-submit" disabled=${!route} onClick=${report}>Report</button>
      ${error ? html`<p class="text-warn" role="alert">${error}</p>` : null}
    </div>`;
}

function Compare({ before, after }) {
  const rows = [
    ["Distance", km(before.distance_m), km(after.distance_m), after.distance_m - before.distance_m],
    ["Driving time", hours(before.duration_s), hours(after.duration_s), after.duration_s - before.duration_s],
    ["Late visits", before.late, after.late, after.late - before.late],
    ["At risk (< 15 min)", before.at_risk, after.at_risk, after.at_risk - before.at_risk],
  ];
  return html`
    <table class="diff-table" data-testid="diff-compare">
      <thead><tr><th></th><th>Before</th><th>After</th></tr></thead>
      <tbody>${rows.map(([label, b, a, delta]) => html`
        <tr><th>${label}</th><td>${b}</td><td class=${delta < 0 ? "better" : delta > 0 ? "worse" : ""}>${a}</td></tr>`)}
      </tbody>
    </table>`;
}

function Replan({ plan, drivers, onApplied }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const diff = plan.diff;
  const name = (id) => (id == null ? "unassigned" : drivers.get(id) || `driver ${id}`);
  useEffect(() => { drawDraft(plan.result.routes); return clearDraft; }, [plan.id]);
  const apply = async () => {
    setBusy(true);
    try {
      await api(`plans/${plan.id}/apply/`, { method: "POST" });
      clearDraft();
      onApplied(`Replan ${plan.id} applied: ${diff.moved.length} stops moved.`);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  const changed = diff.routes.filter((r) => r.sequence_changed || r.before.join() !== r.after.join());
  return html`
    <div class="replan card" data-testid="replan-diff">
      <strong>Replan proposed</strong> <span class="muted">(${plan.route_ids.length} routes)</span>
      <${Compare} before=${diff.before} after=${diff.after} />
      <details open>
        <summary>${diff.moved.length} stops change driver</summary>
        <ul class="diff-moves" data-testid="diff-moves">
          ${diff.moved.map((m) => html`<li key=${m.order_id}>Order ${m.order_id}: ${name(m.from_driver_id)} → ${name(m.to_driver_id)}</li>`)}
        </ul>
      </details>
      <details>
        <summary>${changed.length} routes change</summary>
        <ul>${changed.map((r) => html`<li key=${r.route_id}>${name(r.driver_id)}: ${r.before.length} → ${r.after.length} stops
          ${r.sequence_changed ? " (new order)" : ""}</li>`)}</ul>
      </details>
      ${diff.unassigned.length ? html`<p class="text-warn">${diff.unassigned.length} stops could not be placed:
        ${diff.unassigned.map((u) => `${u.order_id} (${u.reason})`).join("; ")}</p>` : null}
      <button type="button" class="btn btn-primary" data-testid="replan-apply" disabled=${busy} onClick=${apply}>Apply</button>
      ${error ? html`<p class="text-warn" role="alert">${error}</p>` : null}
    </div>`;
}

function Exceptions({ drivers }) {
  const [routes, setRoutes] = useState([]);
  const [proposals, setProposals] = useState([]);
  const [message, setMessage] = useState(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let cancelled = false;
    const load = async () => {
      try {
        const [day, ready] = await Promise.all([
          apiList("routes/", { params: { date: currentDate() } }),
          apiList("plans/", { params: { kind: "replan", status: "ready" } }),
        ]);
        if (!cancelled) { setRoutes(day.filter((r) => r.status === "published" || r.status === "in_progress")); setProposals(ready); }
      } catch {
        // the next tick tries again
      }
    };
    load();
    const timer = setInterval(load, 1500);
    return () => { cancelled = true; clearInterval(timer); };
  }, [tick]);
  return html`
    <section class="plan-section" data-testid="exceptions">
      <h3 class="section-title">Exceptions</h3>
      <${ReportException} routes=${routes} onReported=${() => { setMessage("Reported; re-planning…"); setTick((t) => t + 1); }} />
      ${proposals.map((p) => html`<${Replan} key=${p.id} plan=${p} drivers=${drivers}
                                             onApplied=${(text) => { setMessage(text); setTick((t) => t + 1); }} />`)}
      ${message ? html`<p class="muted" data-testid="exceptions-message">${message}</p>` : null}
    </section>`;
}

function PlanningPanel() {
  const [open, setOpen] = useState(false);
  const [hubs, setHubs] = useState([]);
  const [drivers, setDrivers] = useState(new Map());
  useEffect(() => {
    if (!open) return;
    apiList("hubs/").then(setHubs).catch(() => setHubs([]));
    apiList("drivers/").then((rows) => setDrivers(new Map(rows.map((d) => [d.id, d.name])))).catch(() => {});
  }, [open]);
  return html`
    <div class=${`planning card${open ? " is-open" : ""}`}>
      <button type="button" class="btn btn-small" data-testid="planning-toggle" aria-expanded=${open}
              onClick=${() => { setOpen(!open); if (open) clearDraft(); }}>${open ? "Close planning" : "Planning"}</button>
      ${open ? html`<${PlanDay} hubs=${hubs} /><${Exceptions} drivers=${drivers} />` : null}
    </div>`;
}

render(html`<${PlanningPanel} />`, document.getElementById("planning-slot"));
