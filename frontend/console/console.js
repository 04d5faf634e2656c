// The dispatcher's console: a snapshot of one day over the REST API. The server
// renders the header and passes its settings in #console-config; this module
// owns the state (date, snapshot, selection) and drives the panel and the map.

import { html, render, useCallback, useEffect, useRef, useState } from "preact-htm";

import { ApiError, describeError } from "../common/api.js";
import { addDays } from "../common/format.js";
import { ConsoleMap } from "./map.js";
import { ErrorBanner, Legend, RouteCard, RouteDetail, Summary } from "./panel.js";
import { loadSnapshot } from "./snapshot.js";

const config = JSON.parse(document.getElementById("console-config").textContent);
const tz = config.timezone;
const datePicker = document.getElementById("date-picker");

function setUrlDate(date) {
  const url = new URL(location.href);
  if (date === config.today) url.searchParams.delete("date");
  else url.searchParams.set("date", date);
  history.replaceState(null, "", url);
}

function App() {
  const [date, setDate] = useState(config.date);
  const [snapshot, setSnapshot] = useState(null);
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(true);
  const [selectedRouteId, setSelectedRouteId] = useState(null);
  const [selectedStopId, setSelectedStopId] = useState(null);
  const [reloads, setReloads] = useState(0);
  const mapRef = useRef(null);

  const selectRoute = useCallback((routeId) => {
    setSelectedRouteId(routeId);
    setSelectedStopId(null);
  }, []);
  const selectStop = useCallback((routeId, stopId) => {
    setSelectedRouteId(routeId);
    setSelectedStopId(stopId);
  }, []);

  // The map lives outside Preact's tree: create it once.
  useEffect(() => {
    mapRef.current = new ConsoleMap(document.getElementById("map"), {
      tileUrl: config.tileUrl,
      tileAttribution: config.tileAttribution,
      timezone: tz,
      onSelectRoute: selectRoute,
      onSelectStop: selectStop,
    });
  }, []);

  // The header's date controls are server-rendered; wire them to the state.
  useEffect(() => {
    const change = (next) => next && setDate(next);
    const onPick = () => change(datePicker.value);
    const buttons = {
      "date-prev": () => setDate((d) => addDays(d, -1)),
      "date-next": () => setDate((d) => addDays(d, 1)),
      "date-today": () => setDate(config.today),
    };
    datePicker.addEventListener("change", onPick);
    for (const [id, handler] of Object.entries(buttons)) document.getElementById(id).addEventListener("click", handler);
    return () => {
      datePicker.removeEventListener("change", onPick);
      for (const [id, handler] of Object.entries(buttons)) document.getElementById(id).removeEventListener("click", handler);
    };
  }, []);

  useEffect(() => {
    datePicker.value = date;
    document.getElementById("date-today").disabled = date === config.today;
    setUrlDate(date);
    const controller = new AbortController();
    setLoading(true);
    setError(null);
    setSelectedRouteId(null);
    setSelectedStopId(null);
    loadSnapshot(date, { signal: controller.signal })
      .then((next) => {
        setSnapshot(next);
        mapRef.current.render(next);
      })
      .catch((err) => {
        if (err.name === "AbortError") return;
        console.error(err);
        setError(err instanceof ApiError ? err : new ApiError({ code: "", message: describeError(err) }));
      })
      .finally(() => {
        if (!controller.signal.aborted) setLoading(false);
      });
    return () => controller.abort();
  }, [date, reloads]);

  useEffect(() => {
    mapRef.current?.focus(selectedRouteId);
  }, [selectedRouteId, snapshot]);

  useEffect(() => {
    if (selectedStopId != null) {
      mapRef.current?.showStop(selectedRouteId, selectedStopId);
      document.querySelector(`[data-stop-id="${selectedStopId}"]`)?.scrollIntoView({ block: "nearest" });
    }
  }, [selectedStopId]);

  const route = snapshot?.routes.find((r) => r.id === selectedRouteId);
  const fresh = snapshot?.date === date;

  return html`
    ${error ? html`<${ErrorBanner} error=${error} onRetry=${() => setReloads((n) => n + 1)} />` : null}
    ${loading && !snapshot ? html`<p class="panel-loading">Loading…</p>` : null}
    ${snapshot ? html`
      <div class=${`panel-content${loading || !fresh ? " is-stale" : ""}`} aria-busy=${loading}>
        ${route
          ? html`<${RouteDetail} route=${route} tz=${tz} selectedStopId=${selectedStopId}
                                onBack=${() => selectRoute(null)} onSelectStop=${selectStop} />`
          : html`
            <${Summary} snapshot=${snapshot} />
            <section aria-label="Routes">
              <h3 class="section-title">Routes</h3>
              ${snapshot.routes.length
                ? html`<div class="route-list" data-testid="route-list">
                    ${snapshot.routes.map((r) => html`
                      <${RouteCard} key=${r.id} route=${r} tz=${tz} selected=${false} onSelect=${selectRoute} />`)}
                  </div>`
                : html`<p class="empty">No routes on this day.</p>`}
            </section>
            <${Unplanned} snapshot=${snapshot} />`}
      </div>` : null}
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
