// The live event feed: each event of the organization as one line a dispatcher can
// read at a glance ("09:14 Anna Schneider completed stop 3 (Torstraße 1)"), newest
// first. Events that only echo another (an order delivered because its stop was
// completed) are left out.

import { html } from "preact-htm";

import { formatTime } from "../common/format.js";
import { FAILURE_LABELS } from "./panel.js";

export const FEED_LIMIT = 100;

// Order events that repeat what a stop or route event already says.
const ECHOES = new Set([
  "order.updated", "order.planned", "order.unplanned", "order.dispatched", "order.out_for_delivery",
  "order.delivered", "order.failed",
]);

// route.updated's `reason`, as a sentence ends.
const ROUTE_REASONS = {
  unpublished: "unpublished: back to draft",
  order_cancelled: "updated: an order was cancelled",
};

/** What the describer needs to name things: the day's routes and stops, and the drivers. */
export function feedContext(day, drivers) {
  const routes = new Map();
  const stops = new Map();
  for (const route of day?.routes || []) {
    routes.set(route.id, route);
    for (const stop of route.stops) stops.set(stop.id, stop);
  }
  return { routes, stops, drivers: new Map((drivers || []).map((d) => [d.id, d])) };
}

function orderRef(p) {
  return p.reference || p.external_id || (p.order_id ? `#${p.order_id}` : "");
}

/**
 * One feed line for an event, or null when it adds nothing.
 * @returns {{seq: number, at: string, text: string, tone: string, target: object|null} | null}
 */
export function describeEvent(event, ctx) {
  if (ECHOES.has(event.type)) return null;
  const p = event.payload || {};
  const line = (text, tone = "info", target = null) => ({ seq: event.seq, at: event.at, type: event.type, text, tone, target });
  const route = ctx.routes.get(p.route_id);
  const routeName = route?.label || (p.route_id ? `Route ${p.route_id}` : "A route");
  const driverName = (id) => ctx.drivers.get(id)?.name;

  if (event.type.startsWith("stop.")) {
    const stop = ctx.stops.get(Number(event.subject_id));
    const street = stop?.order?.address_line1;
    const number = p.sequence ?? stop?.sequence;
    const what = `${number != null ? `stop ${number}` : "a stop"}${street ? ` (${street})` : ""}`;
    const who = route?.driver_name || driverName(route?.driver) || routeName;
    const target = { routeId: p.route_id, stopId: Number(event.subject_id) };
    switch (event.type) {
      case "stop.arrived":
        return line(`${who} arrived at ${what}`, "info", target);
      case "stop.completed":
        return line(`${who} completed ${what}`, "ok", target);
      case "stop.failed": {
        const reason = FAILURE_LABELS[p.failure_reason] || p.failure_reason;
        return line(`${who} could not complete ${what}${reason ? `: ${reason}` : ""}`, "fail", target);
      }
      case "stop.cancelled":
        return line(`${capitalize(what)} on ${routeName} was cancelled`, "muted", target);
      default:
        return line(`${capitalize(what)}: ${event.type}`, "info", target);
    }
  }

  if (event.type.startsWith("route.")) {
    const target = { routeId: p.route_id };
    const driver = driverName(p.driver_id) || route?.driver_name;
    switch (event.type) {
      case "route.created":
        return line(`${routeName} created with ${p.stop_count ?? 0} ${p.stop_count === 1 ? "stop" : "stops"}`, "info", target);
      case "route.published":
        return line(`${routeName} published${driver ? ` to ${driver}` : ""}`, "info", target);
      case "route.started":
        return line(`${driver || "The driver"} started ${routeName}`, "info", target);
      case "route.completed":
        return line(`${driver || "The driver"} finished ${routeName}`, "ok", target);
      case "route.deleted":
        return line(`${routeName} deleted`, "muted", null);
      case "route.updated": {
        const added = p.added?.length || 0;
        const removed = p.removed?.length || 0;
        if (added || removed) {
          const parts = [added ? `${added} added` : "", removed ? `${removed} removed` : ""].filter(Boolean);
          return line(`${routeName}: ${parts.join(", ")} ${added + removed === 1 ? "stop" : "stops"}`, "info", target);
        }
        if (p.order_ids) return line(`${routeName}: stops reordered`, "info", target);
        if (p.reason) {
          const why = ROUTE_REASONS[p.reason] || `updated (${String(p.reason).replaceAll("_", " ")})`;
          return line(`${routeName} ${why}`, "info", target);
        }
        return line(`${routeName} updated${p.changed?.length ? `: ${p.changed.join(", ").replaceAll("_", " ")}` : ""}`,
          "info", target);
      }
      default:
        return line(`${routeName}: ${event.type}`, "info", target);
    }
  }

  if (event.type.startsWith("driver.")) {
    const id = p.driver_id ?? Number(event.subject_id);
    const name = p.name || driverName(id) || `Driver ${id}`;
    const target = { driverId: id };
    if (event.type === "driver.duty_changed") return line(`${name} went ${p.on_duty ? "on" : "off"} duty`, "info", target);
    if (event.type === "driver.location_stale") {
      const minutes = Math.round((p.stale_after_s || 300) / 60);
      return line(`No position from ${name} for ${minutes} min`, "warn", target);
    }
    if (event.type === "driver.location_resumed") return line(`${name} is sending positions again`, "info", target);
    if (event.type === "driver.created") return line(`New driver: ${name}`, "info", target);
    return line(`${name}'s details were updated`, "muted", target);
  }

  if (event.type.startsWith("order.")) {
    const ref = orderRef(p);
    switch (event.type) {
      case "order.created":
        return line(`New order ${ref}${p.source && p.source !== "api" ? ` from ${p.source}` : ""}`, "info");
      case "order.cancelled":
        return line(`Order ${ref} cancelled${p.reason ? `: ${p.reason}` : ""}`, "muted");
      case "order.rescheduled":
        return line(`Order ${ref} rescheduled${p.attempts ? ` (attempt ${p.attempts + 1})` : ""}`, "warn");
      case "order.returned":
        return line(`Order ${ref} returned to the hub`, "warn");
      default:
        return line(`Order ${ref}: ${event.type.slice(6).replaceAll("_", " ")}`, "info");
    }
  }

  if (event.type.startsWith("pod.")) {
    const stop = ctx.stops.get(p.stop_id);
    const what = stop ? `stop ${stop.sequence}${stop.order?.address_line1 ? ` (${stop.order.address_line1})` : ""}` : "a stop";
    const target = { routeId: p.route_id, stopId: p.stop_id };
    if (event.type === "pod.exception") return line(`Review ${what}: ${p.message}`, "warn", target);
    if (event.type === "pod.exception_resolved") return line(`Reviewed ${what}${p.note ? `: ${p.note}` : ""}`, "muted", target);
    const parts = [p.photos ? `${p.photos} photo${p.photos > 1 ? "s" : ""}` : "", p.signature ? "signature" : ""].filter(Boolean);
    const far = (p.flags || []).includes("far_from_address") ? ` · ${Math.round(p.distance_m)} m from the address` : "";
    return line(`Proof of delivery for ${what}${parts.length ? `: ${parts.join(", ")}` : ""}${far}`, far ? "warn" : "info", target);
  }
  // Planning (planning.js): exceptions and replans are alerts; a job's progress is not news.
  if (event.type === "plan.progress") return null;
  if (event.type === "exception.reported") {
    const kind = String(p.kind || "exception").replaceAll("_", " ");
    return line(`Exception: ${kind}${p.route_id ? ` on ${routeName}` : ""}`, "warn", p.route_id ? { routeId: p.route_id } : null);
  }
  if (event.type === "replan.proposed") return line(`Replan proposed: ${p.moved ?? 0} stops change driver`, "warn");
  if (event.type === "replan.applied") return line(`Replan applied to ${p.route_ids?.length ?? 0} routes`, "ok");
  if (event.type === "replan.failed") return line(`Replan failed, the routes are unchanged: ${p.error || ""}`, "fail");
  if (event.type === "plan.ready") return line(`Plan of ${p.date} ready: ${p.totals?.stops ?? 0} stops`, "info");
  if (event.type === "plan.published") return line(`Plan of ${p.date} published: ${p.route_ids?.length ?? 0} routes`, "ok");

  const [subject, verb] = event.type.split(".");
  return line(`${capitalize(subject)} ${p.code || event.subject_id} ${verb || "changed"}`, "muted");
}

function capitalize(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}

/** Newest first, at most FEED_LIMIT lines; a line already shown (same seq) is not repeated. */
export function addToFeed(feed, lines) {
  const seen = new Set(feed.map((l) => l.seq));
  const fresh = lines.filter((l) => l && !seen.has(l.seq)).sort((a, b) => b.seq - a.seq);
  if (!fresh.length) return feed;
  return [...fresh, ...feed].sort((a, b) => b.seq - a.seq).slice(0, FEED_LIMIT);
}

export function Feed({ lines, tz, live, collapsed, onToggle, onSelect }) {
  return html`
    <section class=${`feed card${collapsed ? " is-collapsed" : ""}`} data-testid="feed" aria-label="Live event feed">
      <header class="feed-head">
        <h2>Live feed</h2>
        <span class="muted">${lines.length ? `${lines.length}${lines.length >= FEED_LIMIT ? "+" : ""}` : ""}</span>
        <button type="button" class="btn btn-ghost btn-small feed-toggle" onClick=${onToggle}
                aria-expanded=${!collapsed}>${collapsed ? "Show" : "Hide"}</button>
      </header>
      ${collapsed ? null : lines.length
        ? html`<ol class="feed-list" aria-live="polite">
            ${lines.map((l) => html`
              <li key=${l.seq} class=${`feed-item tone-${l.tone}${l.live ? " is-new" : ""}`}
                  data-testid="feed-item" data-type=${l.type}>
                <button type="button" disabled=${!l.target} onClick=${() => l.target && onSelect(l.target)}>
                  <time datetime=${l.at}>${formatTime(l.at, tz)}</time>
                  <span class="feed-dot" aria-hidden="true"></span>
                  <span class="feed-text">${l.text}</span>
                </button>
              </li>`)}
          </ol>`
        : html`<p class="feed-empty muted">${live ? "Nothing has happened yet. New activity appears here." : "Waiting for the live connection…"}</p>`}
    </section>`;
}
