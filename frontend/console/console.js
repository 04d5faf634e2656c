// The dispatcher's console. The server renders the header and passes its settings in
// #console-config; the store (store.js) owns the data and the live connection; this
// module owns what is on screen (tab, selection) and drives the panel, the map, the
// feed and the status pill.

import { html, render, useCallback, useEffect, useMemo, useRef, useState } from "preact-htm";

import { ApiError, describeError } from "../common/api.js";
import { addDays } from "../common/format.js";
import { DriverDetail, DriverList, fleetRows } from "./drivers.js";
import { ExceptionsCard } from "./exceptions.js";
import { Feed } from "./feed.js";
import { ConsoleMap } from "./map.js";
import { ErrorBanner, Legend, RouteCard, RouteDetail, Summary } from "./panel.js";
import { ConsoleStore } from "./store.js";
import { LiveStatus } from "./status.js";

const config = JSON.parse(document.getElementById("console-config").textContent);
const tz = config.timezone;
const datePicker = document.getElementById("date-picker");
const store = new ConsoleStore({ today: config.today });

function setUrlDate(date) {
  const url = new URL(location.href);
  if (date === config.today) url.searchParams.delete("date");
  else url.searchParams.set("date", date);
  history.replaceState(null, "", url);
}

function useStore() {
  const [state, setState] = useState(store.state);
  useEffect(() => store.subscribe(setState), []);
  return state;
}

// Relative times ("25 s ago") need a clock that ticks.
function useNow(intervalMs) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}

const NONE = { routeId: null, stopId: null, driverId: null };
const NO_ROUTES = [];

function App() {
  const { date, day, loading, error, drivers, positions, feed, live } = useStore();
  const [tab, setTab] = useState("routes");
  const [selection, setSelection] = useState(NONE);
  const [feedCollapsed, setFeedCollapsed] = useState(false);
  const now = useNow(5000);
  const mapRef = useRef(null);
  const drawnDate = useRef(null);
  const isToday = date === config.today;

  const selectRoute = useCallback((routeId) => setSelection({ ...NONE, routeId }), []);
  const selectStop = useCallback((routeId, stopId) => setSelection({ ...NONE, routeId, stopId }), []);
  const selectDriver = useCallback((driverId) => {
    setSelection({ ...NONE, driverId });
    if (driverId != null) setTab("drivers");
  }, []);
  const selectTarget = useCallback((target) => {
    if (target.stopId != null) selectStop(target.routeId, target.stopId);
    else if (target.routeId != null) selectRoute(target.routeId);
    else if (target.driverId != null) selectDriver(target.driverId);
  }, []);

  // The map lives outside Preact's tree: create it once.
  useEffect(() => {
    mapRef.current = new ConsoleMap(document.getElementById("map"), {
      tileUrl: config.tileUrl,
      tileAttribution: config.tileAttribution,
      timezone: tz,
      onSelectRoute: selectRoute,
      onSelectStop: selectStop,
      onSelectDriver: selectDriver,
      overlays: () => {
        const feed = document.getElementById("feed-slot");
        return {
          right: feed.childElementCount ? feed.offsetWidth + 12 : 0,
          bottom: document.getElementById("map-overlay").offsetHeight,
        };
      },
    });
    // Other console modules (planning.js) draw on the same map.
    window.dispatchEvent(new CustomEvent("console:map", { detail: mapRef.current }));
    store.setDate(config.date);
  }, []);

  // The header's date controls are server-rendered; wire them to the store.
  useEffect(() => {
    const change = (next) => next && next !== store.state.date && store.setDate(next);
    const onPick = () => change(datePicker.value);
    const buttons = {
      "date-prev": () => change(addDays(store.state.date, -1)),
      "date-next": () => change(addDays(store.state.date, 1)),
      "date-today": () => change(config.today),
    };
    datePicker.addEventListener("change", onPick);
    for (const [id, handler] of Object.entries(buttons)) document.getElementById(id).addEventListener("click", handler);
    return () => {
      datePicker.removeEventListener("change", onPick);
      for (const [id, handler] of Object.entries(buttons)) document.getElementById(id).removeEventListener("click", handler);
    };
  }, []);

  useEffect(() => {
    if (!date) return;
    datePicker.value = date;
    document.getElementById("date-today").disabled = isToday;
    setUrlDate(date);
    setSelection(NONE);
  }, [date]);

  // A new day is drawn and fitted; a changed one (live updates) is synced in place.
  useEffect(() => {
    if (!day) return;
    if (drawnDate.current !== day.date) {
      drawnDate.current = day.date;
      mapRef.current.render(day);
    } else {
      mapRef.current.sync(day);
    }
  }, [day]);

  const routes = day?.date === date ? day.routes : NO_ROUTES;
  // Positions are now; on another day the drivers are listed without them.
  const rows = useMemo(() => fleetRows(drivers, routes, isToday ? positions : new Map()), [drivers, routes, positions, isToday]);
  // Also on the clock's tick: a driver who stopped reporting fades without any message.
  useEffect(() => mapRef.current?.updateDrivers(rows), [rows, now]);
  useEffect(() => {
    const driverRoute = rows.find((r) => r.driver.id === selection.driverId)?.route?.id ?? null;
    mapRef.current?.focus(selection.routeId ?? driverRoute, { fit: selection.routeId != null || selection.driverId == null });
    mapRef.current?.selectDriver(selection.driverId);
  }, [selection.routeId, selection.driverId]);
  useEffect(() => {
    if (selection.stopId != null) {
      mapRef.current?.showStop(selection.routeId, selection.stopId);
      document.querySelector(`.stop-list [data-stop-id="${selection.stopId}"]`)?.scrollIntoView({ block: "nearest" });
    }
  }, [selection.stopId]);

  // The status pill sits in the server-rendered header, the feed over the map.
  useEffect(() => {
    render(html`<${LiveStatus} live=${live} isToday=${isToday} />`, document.getElementById("live-status"));
  }, [live, isToday]);
  useEffect(() => {
    render(isToday
      ? html`<${Feed} lines=${feed} tz=${tz} live=${live.status === "live"} collapsed=${feedCollapsed}
                      onToggle=${() => setFeedCollapsed((c) => !c)} onSelect=${selectTarget} />`
      : null, document.getElementById("feed-slot"));
  }, [feed, isToday, live.status, feedCollapsed]);

  const route = routes.find((r) => r.id === selection.routeId);
  const driverRow = rows.find((r) => r.driver.id === selection.driverId);
  const fresh = day?.date === date;
  const shownError = error && (error instanceof ApiError ? error : new ApiError({ code: "", message: describeError(error) }));

  let body;
  if (route) {
    body = html`<${RouteDetail} route=${route} tz=${tz} selectedStopId=${selection.stopId}
                                onBack=${() => selectRoute(null)} onSelectStop=${selectStop} />`;
  } else if (driverRow) {
    body = html`<${DriverDetail} row=${driverRow} now=${now} tz=${tz} isToday=${isToday} onBack=${() => selectDriver(null)}
                                 onSelectRoute=${selectRoute} onSelectStop=${selectStop} />`;
  } else if (day) {
    body = html`
      <div class="tabs" role="tablist" aria-label="Panel">
        ${[["routes", "Routes", routes.length], ["drivers", "Drivers", rows.length]].map(([key, label, count]) => html`
          <button type="button" role="tab" class=${`tab${tab === key ? " is-active" : ""}`} aria-selected=${tab === key}
                  data-testid=${`tab-${key}`} onClick=${() => setTab(key)}>
            ${label} <span class="tab-count">${count}</span>
          </button>`)}
      </div>
      ${tab === "drivers"
        ? html`<${DriverList} rows=${rows} now=${now} tz=${tz} isToday=${isToday} onSelect=${selectDriver} />`
        : html`
          ${isToday ? html`<${ExceptionsCard} feed=${feed} onSelect=${selectTarget} />` : null}
          <${Summary} snapshot=${day} />
          <section aria-label="Routes">
            <h3 class="section-title">Routes</h3>
            ${routes.length
              ? html`<div class="route-list" data-testid="route-list">
                  ${routes.map((r) => html`
                    <${RouteCard} key=${r.id} route=${r} tz=${tz} selected=${false} onSelect=${selectRoute} />`)}
                </div>`
              : html`<p class="empty">No routes on this day.</p>`}
          </section>
          <${Unplanned} snapshot=${day} />`}`;
  }

  return html`
    ${shownError ? html`<${ErrorBanner} error=${shownError} onRetry=${() => store.reload()} />` : null}
    ${live.status === "denied" ? html`<div class="alert alert-error" role="alert">${live.message}
        ${live.code === 4401 ? html` <a href=${`/accounts/login/?next=${encodeURIComponent(location.pathname)}`}>Sign in</a>` : null}</div>` : null}
    ${!day && !shownError ? html`<p class="panel-loading">Loading…</p>` : null}
    ${day ? html`
      <div class=${`panel-content${loading || !fresh ? " is-stale" : ""}`} aria-busy=${loading}>${body}</div>` : null}
  `;
}

function Unplanned({ snapshot }) {
  const shown = snapshot.unplanned.length;
  if (!shown && !snapshot.unplannedWithoutCoords) return null;
  return html`
    <section class="card unplanned" data-testid="unplanned">
      <span class="legend-order" aria-hidden="true"></span>
      <div>
        <strong>${shown} unplanned ${shown === 1 ? "order" : "orders"}</strong> on the map
        ${snapshot.unplannedTruncated ? html` <span class="muted">(the first ${shown}; there are more)</span>` : null}
        ${snapshot.unplannedWithoutCoords
          ? html`<div class="text-warn">${snapshot.unplannedWithoutCoords} more without coordinates cannot be shown.</div>`
          : null}
      </div>
    </section>`;
}

const panel = document.getElementById("panel");
panel.textContent = ""; // the server-rendered "Loading…" placeholder
render(html`<${App} />`, panel);
render(html`<${Legend} />`, document.getElementById("map-overlay"));
