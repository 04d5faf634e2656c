// The fleet in the side panel: each driver with their duty state, when they were
// last seen, their next stop and their progress; and one driver's details.

import { html } from "preact-htm";

import { formatTime, formatWindow } from "../common/format.js";
import { Fact, RouteCard } from "./panel.js";
import { STOP_STATUSES, stopStatus } from "./snapshot.js";

const STOP_LABEL = Object.fromEntries(STOP_STATUSES.map((s) => [s.key, s.label]));
const NO_ROUTE_COLOR = "#475569";
// A driver whose last position is older than this is drawn faded: the dot may be wrong.
export const STALE_AFTER_MS = 5 * 60 * 1000;

export function initials(name) {
  const parts = String(name || "?").trim().split(/\s+/);
  return ((parts[0]?.[0] || "") + (parts.length > 1 ? parts[parts.length - 1][0] : "")).toUpperCase();
}

/** "just now", "25 s ago", "4 min ago", "2 h ago"; "" for null. */
export function relativeTime(iso, now, tz) {
  if (!iso) return "";
  const seconds = Math.max(0, Math.round((now - new Date(iso)) / 1000));
  if (seconds < 10) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `since ${formatTime(iso, tz)}`;
}

// The route a driver is working on today: the one under way, else the next one.
function currentRoute(routes) {
  const rank = { in_progress: 0, published: 1, draft: 2, completed: 3 };
  return [...routes].sort((a, b) => (rank[a.status] ?? 9) - (rank[b.status] ?? 9) || a.id - b.id)[0] || null;
}

export function nextStop(route) {
  if (!route) return null;
  return route.stops.find((s) => s.state === "arrived") || route.stops.find((s) => s.state === "pending") || null;
}

/** One row per active driver, on duty first. */
export function fleetRows(drivers, routes, positions) {
  const rows = drivers.filter((d) => d.active !== false).map((driver) => {
    const theirs = routes.filter((r) => r.driver === driver.id);
    const route = currentRoute(theirs);
    const position = positions.get(driver.id) || null;
    return {
      driver,
      route,
      routes: theirs,
      next: nextStop(route),
      position,
      color: route?.color || NO_ROUTE_COLOR,
    };
  });
  return rows.sort((a, b) => Number(b.driver.on_duty) - Number(a.driver.on_duty)
    || Number(Boolean(b.route)) - Number(Boolean(a.route))
    || a.driver.name.localeCompare(b.driver.name));
}

function DutyBadge({ onDuty }) {
  return html`<span class=${`duty ${onDuty ? "is-on" : "is-off"}`}>${onDuty ? "On duty" : "Off duty"}</span>`;
}

function nextText(row, isToday) {
  if (!row.route) return html`<span class="muted">${isToday ? "No route today" : "No route this day"}</span>`;
  if (!row.next) return html`<span class="muted">${row.route.status === "completed" ? "Route completed" : "No open stops"}</span>`;
  const verb = row.next.state === "arrived" ? "At" : "Next";
  return html`${verb}: <strong>${row.next.sequence}</strong> · ${row.next.order?.address_line1 || row.next.order?.customer_name}`;
}

export function DriverList({ rows, now, tz, isToday, onSelect }) {
  if (!rows.length) return html`<p class="empty">No active drivers.</p>`;
  const onDuty = rows.filter((r) => r.driver.on_duty).length;
  return html`
    <div class="driver-list" data-testid="driver-list">
      <div class="list-caption muted">${onDuty} of ${rows.length} on duty</div>
      ${rows.map((row) => {
        const { done, total } = row.route?.progress || { done: 0, total: 0 };
        const seen = relativeTime(row.position?.at, now, tz);
        const stale = row.position && now - new Date(row.position.at) > STALE_AFTER_MS;
        return html`
          <button type="button" key=${row.driver.id} class="driver-row" data-testid="driver-row"
                  data-driver-id=${row.driver.id} style=${`--driver-color:${row.color}`} onClick=${() => onSelect(row.driver.id)}>
            <span class=${`driver-avatar${row.driver.on_duty ? "" : " is-off"}`} aria-hidden="true">${initials(row.driver.name)}</span>
            <span class="driver-main">
              <span class="driver-name">
                <span class="driver-name-text">${row.driver.name}</span>
                <${DutyBadge} onDuty=${row.driver.on_duty} />
              </span>
              <span class="driver-next" data-testid="driver-next">${nextText(row, isToday)}</span>
            </span>
            <span class="driver-side">
              <span class="driver-progress" data-testid="driver-progress" title="Stops done / total">${row.route ? `${done}/${total}` : "–"}</span>
              ${isToday ? html`
                <span class=${`driver-seen${stale ? " text-warn" : ""}`} data-testid="driver-seen"
                      title=${row.position ? `Last position ${formatTime(row.position.at, tz)}` : "No position yet"}>
                  ${seen || "not seen"}
                </span>` : null}
            </span>
          </button>`;
      })}
    </div>`;
}

export function DriverDetail({ row, now, tz, isToday, onBack, onSelectRoute, onSelectStop }) {
  const { driver, position, route } = row;
  const upcoming = route ? route.stops.filter((s) => s.state === "pending" || s.state === "arrived").slice(0, 4) : [];
  return html`
    <section class="driver-detail" data-testid="driver-detail" aria-label=${`Driver ${driver.name}`}>
      <button type="button" class="btn btn-ghost btn-back" onClick=${onBack}>‹ All drivers</button>
      <div class="card">
        <div class="driver-head" style=${`--driver-color:${row.color}`}>
          <span class=${`driver-avatar is-large${driver.on_duty ? "" : " is-off"}`} aria-hidden="true">${initials(driver.name)}</span>
          <div>
            <h2>${driver.name}</h2>
            <div class="muted">${driver.username}</div>
          </div>
          <${DutyBadge} onDuty=${driver.on_duty} />
        </div>
        <dl class="facts">
          ${isToday ? html`
            <${Fact} label="Last seen">
              ${position
                ? html`<span data-testid="driver-last-seen">${relativeTime(position.at, now, tz)}</span>
                       <span class="muted"> · ${formatTime(position.at, tz)}</span>`
                : html`<span class="muted">No position yet</span>`}
            <//>` : null}
          ${position ? html`
            <${Fact} label="Speed">${position.speed_mps != null ? `${Math.round(position.speed_mps * 3.6)} km/h` : "–"}<//>
            <${Fact} label="Accuracy">${position.accuracy_m != null ? `± ${Math.round(position.accuracy_m)} m` : "–"}<//>
            <${Fact} label="Position"><span class="mono">${position.lat.toFixed(5)}, ${position.lng.toFixed(5)}</span><//>` : null}
          <${Fact} label="Shift">${driver.shift_start?.slice(0, 5)}–${driver.shift_end?.slice(0, 5)}<//>
          ${driver.phone ? html`<${Fact} label="Phone"><a href=${`tel:${driver.phone}`}>${driver.phone}</a><//>` : null}
        </dl>
      </div>
      ${route
        ? html`
          <h3 class="section-title">${isToday ? "Route today" : "Route this day"}</h3>
          ${row.routes.map((r) => html`<${RouteCard} key=${r.id} route=${r} tz=${tz} selected=${false} onSelect=${onSelectRoute} />`)}
          <h3 class="section-title">Next stops</h3>
          ${upcoming.length
            ? html`<ol class="stop-list">
                ${upcoming.map((stop) => html`
                  <li class="stop-row" key=${stop.id} data-stop-id=${stop.id}>
                    <button type="button" onClick=${() => onSelectStop(route.id, stop.id)}>
                      <span class=${`stop-badge is-${stopStatus(stop)}`} style=${`--route-color:${route.color}`}>${stop.sequence}</span>
                      <span class="stop-main">
                        <span class="stop-title">${stop.order.customer_name}</span>
                        <span class="stop-sub">${stop.order.address_line1}, ${stop.order.city}</span>
                        <span class="stop-meta">
                          <span>${formatWindow(stop.order.window_start, stop.order.window_end, tz)}</span>
                          ${stop.eta ? html`<span>ETA ${formatTime(stop.eta, tz)}</span>` : null}
                        </span>
                      </span>
                      <span class=${`pill is-${stopStatus(stop)}`}>${STOP_LABEL[stopStatus(stop)]}</span>
                    </button>
                  </li>`)}
              </ol>`
            : html`<p class="empty">No open stops.</p>`}`
        : html`<p class="empty">${isToday ? "No route today." : "No route this day."}</p>`}
    </section>`;
}
