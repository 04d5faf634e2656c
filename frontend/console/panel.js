// The side panel's pieces: order summary, route cards, a route's stop list, and the
// map legend. Pure views over the snapshot (see snapshot.js); console.js owns state.

import { html, useEffect, useState } from "preact-htm";

import { api } from "../common/api.js";
import { formatDay, formatDuration, formatTime, formatWindow } from "../common/format.js";
import { PodPanel } from "./pod.js";
import { ORDER_STATUSES, ROUTE_STATUS_LABELS, STOP_STATUSES, stopStatus } from "./snapshot.js";

const STOP_LABEL = Object.fromEntries(STOP_STATUSES.map((s) => [s.key, s.label]));
export const FAILURE_LABELS = {
  recipient_absent: "Recipient absent",
  refused: "Refused",
  address_not_found: "Address not found",
  access_denied: "Access denied",
  damaged: "Damaged",
  unsafe: "Unsafe",
  other: "Other",
};

export function ErrorBanner({ error, onRetry }) {
  return html`
    <div class="alert alert-error" role="alert" data-testid="error">
      <div>
        <strong>Could not load the console.</strong>
        <div>${error.message}</div>
        ${error.code ? html`<div class="alert-code">${error.code}${error.status ? ` · HTTP ${error.status}` : ""}</div>` : null}
      </div>
      ${onRetry ? html`<button type="button" class="btn btn-small" onClick=${onRetry}>Retry</button>` : null}
    </div>`;
}

export function Summary({ snapshot }) {
  const { counts, total } = snapshot.summary;
  const stops = snapshot.routes.reduce((n, r) => n + r.progress.total, 0);
  return html`
    <section class="card summary" data-testid="summary" aria-label="Orders by state">
      <div class="card-head">
        <h2>${formatDay(snapshot.date)}</h2>
        <span class="muted">${snapshot.routes.length} ${snapshot.routes.length === 1 ? "route" : "routes"} · ${stops} stops</span>
      </div>
      <div class="stacked-bar" aria-hidden="true">
        ${ORDER_STATUSES.filter((s) => counts[s.key]).map((s) => html`
          <span class=${`seg os-${s.key}`} style=${`flex-grow:${counts[s.key]}`} title=${`${s.label}: ${counts[s.key]}`}></span>`)}
      </div>
      <ul class="summary-grid">
        ${ORDER_STATUSES.map((s) => html`
          <li class=${counts[s.key] ? "" : "is-zero"} data-state=${s.key}>
            <span class=${`dot os-${s.key}`}></span>
            <span class="summary-label">${s.label}</span>
            <span class="summary-count">${counts[s.key]}</span>
          </li>`)}
      </ul>
      <div class="summary-foot muted">${total} orders on this day's routes and in the unplanned backlog</div>
    </section>`;
}

function Progress({ progress }) {
  const { total, done, failed } = progress;
  const pct = (n) => (total ? (100 * n) / total : 0);
  return html`
    <div class="progress" role="progressbar" aria-label="Stops completed"
         aria-valuemin="0" aria-valuemax=${total} aria-valuenow=${done}>
      <span class="progress-ok" style=${`width:${pct(done - failed)}%`}></span>
      <span class="progress-failed" style=${`width:${pct(failed)}%`}></span>
    </div>`;
}

function RouteBadge({ status }) {
  return html`<span class=${`badge badge-${status}`}>${ROUTE_STATUS_LABELS[status] || status}</span>`;
}

function plannedSpan(route, tz) {
  if (!route.planned_start) return "Not scheduled";
  const span = `${formatTime(route.planned_start, tz)}–${formatTime(route.planned_end, tz)}`;
  const length = formatDuration(route.planned_start, route.planned_end);
  return length ? `${span} · ${length}` : span;
}

export function RouteCard({ route, tz, selected, onSelect }) {
  const { done, total, failed } = route.progress;
  return html`
    <button type="button" class=${`route-card${selected ? " is-selected" : ""}`} style=${`--route-color:${route.color}`}
            data-testid="route-card" data-route-id=${route.id} aria-pressed=${selected} onClick=${() => onSelect(route.id)}>
      <div class="route-head">
        <span class="swatch" aria-hidden="true"></span>
        <span class="route-name">${route.label}</span>
        <${RouteBadge} status=${route.status} />
        <span class="version" title="Route version">v${route.version}</span>
      </div>
      <div class="route-people">
        <span class=${route.driver_name ? "" : "missing"}>${route.driver_name || "No driver"}</span>
        <span class="sep" aria-hidden="true">·</span>
        <span class=${route.vehicle_name ? "" : "missing"}>${route.vehicle_name || "No vehicle"}</span>
      </div>
      <${Progress} progress=${route.progress} />
      <div class="route-foot">
        <span class="route-progress" data-testid="route-progress">${done} / ${total} stops${failed ? html` · <span class="text-failed">${failed} failed</span>` : ""}</span>
        <span class="muted">${plannedSpan(route, tz)}</span>
      </div>
    </button>`;
}

// What happened at the stop or when it is expected, and whether that misses the window.
function stopTime(stop, tz) {
  const windowEnd = stop.order.window_end ? new Date(stop.order.window_end) : null;
  const after = (iso) => Boolean(windowEnd && iso && new Date(iso) > windowEnd);
  if (stop.completed_at) return { text: `Done ${formatTime(stop.completed_at, tz)}`, late: after(stop.arrived_at || stop.completed_at) };
  if (stop.arrived_at) return { text: `Arrived ${formatTime(stop.arrived_at, tz)}`, late: after(stop.arrived_at) };
  if (stop.state === "cancelled") return { text: "" };
  const eta = stop.eta || stop.planned_arrival;
  if (!eta) return { text: "No ETA" };
  let text = `ETA ${formatTime(eta, tz)}`;
  if (stop.eta && stop.planned_arrival && Math.abs(new Date(stop.eta) - new Date(stop.planned_arrival)) >= 60000) {
    text += ` (planned ${formatTime(stop.planned_arrival, tz)})`;
  }
  return { text, late: after(eta) };
}

function StopRow({ stop, route, tz, selected, onSelect }) {
  const status = stopStatus(stop);
  const order = stop.order;
  const time = stopTime(stop, tz);
  return html`
    <li class=${`stop-row${selected ? " is-selected" : ""}`} data-testid="stop-row" data-stop-id=${stop.id}>
      <button type="button" onClick=${() => onSelect(route.id, stop.id)}>
        <span class=${`stop-badge is-${status}`} style=${`--route-color:${route.color}`}>${stop.sequence}</span>
        <span class="stop-main">
          <span class="stop-title">${order.customer_name}</span>
          <span class="stop-sub">${order.address_line1}, ${order.postal_code} ${order.city}</span>
          <span class="stop-meta">
            <span title="Delivery window">${formatWindow(order.window_start, order.window_end, tz)}</span>
            ${time.text ? html`<span class=${time.late ? "text-failed" : ""}>${time.text}${time.late ? " · late" : ""}</span>` : null}
          </span>
          ${status === "failed" && stop.failure_reason
            ? html`<span class="stop-note text-failed">${FAILURE_LABELS[stop.failure_reason] || stop.failure_reason}${stop.notes ? ` — ${stop.notes}` : ""}</span>`
            : null}
        </span>
        <span class=${`pill is-${status}`}>${STOP_LABEL[status] || status}</span>
      </button>
    </li>`;
}

export function Fact({ label, children }) {
  return html`<div class="fact"><dt>${label}</dt><dd>${children}</dd></div>`;
}

export function StopDetail({ stop, route, tz, onClose }) {
  const status = stopStatus(stop);
  const order = stop.order;
  const time = stopTime(stop, tz);
  return html`
    <section class="card stop-detail" data-testid="stop-detail" aria-label=${`Stop ${stop.sequence}`}>
      <div class="stop-detail-head">
        <span class=${`stop-badge is-${status}`} style=${`--route-color:${route.color}`}>${stop.sequence}</span>
        <div class="stop-detail-title">
          <h2>${order.customer_name}</h2>
          <div class="muted">${order.reference || order.external_id}</div>
        </div>
        <span class=${`pill is-${status}`} data-testid="stop-detail-status">${STOP_LABEL[status] || status}</span>
        <button type="button" class="btn btn-ghost btn-icon btn-close" aria-label="Close stop details" onClick=${onClose}>×</button>
      </div>
      <dl class="facts">
        <${Fact} label="Address">
          ${order.address_line1}${order.address_line2 ? `, ${order.address_line2}` : ""}, ${order.postal_code} ${order.city}
        <//>
        <${Fact} label="Window">${formatWindow(order.window_start, order.window_end, tz)}<//>
        ${time.text ? html`<${Fact} label="Time"><span class=${time.late ? "text-failed" : ""}>${time.text}${time.late ? " · late" : ""}</span><//>` : null}
        ${status === "failed" && stop.failure_reason
          ? html`<${Fact} label="Reason"><span class="text-failed">${FAILURE_LABELS[stop.failure_reason] || stop.failure_reason}</span><//>`
          : null}
        ${stop.notes ? html`<${Fact} label="Driver's note">${stop.notes}<//>` : null}
        ${order.instructions ? html`<${Fact} label="Instructions">${order.instructions}<//>` : null}
        ${order.customer_phone ? html`<${Fact} label="Phone"><a href=${`tel:${order.customer_phone}`}>${order.customer_phone}</a><//>` : null}
        ${order.parcel_count ? html`<${Fact} label="Parcels">${order.parcel_count}<//>` : null}
        ${stop.late_risk ? html`<${Fact} label="ETA"><span class="text-failed">At risk of missing the window</span><//>` : null}
        ${order.customer_preferences?.instructions ? html`<${Fact} label="Customer's note">${order.customer_preferences.instructions}<//>` : null}
        ${order.customer_preferences?.gate_code ? html`<${Fact} label="Gate code">${order.customer_preferences.gate_code}<//>` : null}
        ${order.customer_preferences?.pin_confirmed_at ? html`<${Fact} label="Pin">Confirmed by the customer<//>` : null}
      </dl>
      <${PodPanel} stop=${stop} tz=${tz} />
      <${Messages} orderId=${order.id} tz=${tz} />
    </section>`;
}

const MESSAGE_STATUS = { pending: "Waiting", sending: "Sending", retry: "Retrying", sent: "Sent", delivered: "Delivered",
  failed: "Failed", suppressed: "Not sent", unconfirmed: "Checking with the provider", review: "Needs review" };

// The customer's notifications for this order and what became of each (docs/notifications.md).
function Messages({ orderId, tz }) {
  const [messages, setMessages] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    const controller = new AbortController();
    setMessages(null);
    api(`orders/${orderId}/messages/`, { signal: controller.signal })
      .then(setMessages)
      .catch((err) => err.name !== "AbortError" && setError(err));
    return () => controller.abort();
  }, [orderId]);
  if (error) return html`<p class="muted">Messages could not be loaded.</p>`;
  if (!messages) return null;
  return html`
    <h3 class="section-title">Customer messages</h3>
    ${messages.length
      ? html`<ul class="message-list" data-testid="order-messages">
          ${messages.map((m) => html`<li title=${m.log.map((l) => `${formatTime(l.at, tz)} ${l.status} ${l.detail}`).join("\n")}>
            <b>${m.trigger.replace(/_/g, " ")}</b> · ${m.channel || "no channel"} ·
            <span class=${m.status === "failed" ? "text-failed" : ""}>${MESSAGE_STATUS[m.status] || m.status}</span>
            ${m.sent_at ? html` <span class="muted">${formatTime(m.sent_at, tz)}</span>` : null}
            ${m.status_detail ? html`<div class="muted">${m.status_detail}</div>` : null}
          </li>`)}
        </ul>`
      : html`<p class="muted">No messages yet.</p>`}`;
}

export function RouteDetail({ route, tz, selectedStopId, onBack, onSelectStop }) {
  const selected = route.stops.find((s) => s.id === selectedStopId);
  return html`
    <section class="route-detail" data-testid="route-detail" aria-label=${`Stops of ${route.label}`}>
      <button type="button" class="btn btn-ghost btn-back" onClick=${onBack}>‹ All routes</button>
      <${RouteCard} route=${route} tz=${tz} selected=${true} onSelect=${() => {}} />
      ${selected ? html`<${StopDetail} stop=${selected} route=${route} tz=${tz} onClose=${() => onSelectStop(route.id, null)} />` : null}
      <h3 class="section-title">Stops in order</h3>
      ${route.stops.length
        ? html`<ol class="stop-list">
            ${route.stops.map((stop) => html`
              <${StopRow} key=${stop.id} stop=${stop} route=${route} tz=${tz}
                          selected=${stop.id === selectedStopId} onSelect=${onSelectStop} />`)}
          </ol>`
        : html`<p class="empty">This route has no stops yet.</p>`}
    </section>`;
}

export function Legend() {
  return html`
    <div class="legend" data-testid="legend" aria-label="Map legend">
      ${STOP_STATUSES.map((s) => html`
        <span class="legend-item"><span class=${`legend-stop is-${s.key}`}></span>${s.label}</span>`)}
      <span class="legend-item"><span class="legend-order"></span>Unplanned order</span>
      <span class="legend-item"><span class="legend-hub"></span>Hub</span>
      <span class="legend-item"><span class="legend-driver"></span>Driver</span>
    </div>`;
}
