// Applying the organization's events (docs/events.md) to the console's picture of
// the day. Pure: given the day, the drivers and a batch of events, return the new
// day and drivers, plus what must be re-read over REST because an event's payload
// does not carry it (a route's new stops, a new driver's details).
//
// Stop and order events patch the day in place, so a marker changes colour the
// moment the event arrives; route events ask for the route again.

import { updateDay } from "./snapshot.js";

const STOP_EVENTS = new Set(["stop.arrived", "stop.completed", "stop.failed", "stop.cancelled"]);

/**
 * @returns {{day: object|null, drivers: object[], routes: Set<number>, touched: Set<number>,
 *            backlog: boolean, refetchDrivers: boolean, hubs: boolean}}
 *   `routes`: route ids to fetch again; `touched`: routes this batch changed (a fetch
 *   already under way for one of them is stale); `backlog`, `refetchDrivers`, `hubs`: reload those.
 */
export function applyEvents(day, drivers, events) {
  const out = {
    day,
    drivers,
    routes: new Set(),
    touched: new Set(),
    backlog: false,
    refetchDrivers: false,
    hubs: false,
  };
  let routes = day ? day.routes : null;
  let backlog = day ? day.backlog : null;
  const patchRoute = (routeId, change) => {
    if (!routes) return;
    const index = routes.findIndex((r) => r.id === routeId);
    if (index < 0) return;
    const next = change(routes[index]);
    if (next === routes[index]) return;
    routes = routes.slice();
    routes[index] = next;
    out.touched.add(routeId);
  };

  for (const event of events) {
    const p = event.payload || {};
    if (STOP_EVENTS.has(event.type)) {
      const stopId = Number(event.subject_id);
      patchRoute(p.route_id, (route) => ({
        ...route,
        stops: route.stops.map((stop) => (stop.id === stopId ? patchStop(stop, event) : stop)),
      }));
    } else if (event.type.startsWith("order.")) {
      const orderId = p.order_id ?? Number(event.subject_id);
      if (p.state && routes) {
        for (const route of routes) {
          if (route.stops.some((s) => s.order?.id === orderId && s.order.state !== p.state)) {
            patchRoute(route.id, (r) => ({
              ...r,
              stops: r.stops.map((s) => (s.order?.id === orderId ? { ...s, order: { ...s.order, state: p.state } } : s)),
            }));
          }
        }
      }
      if (backlog) {
        const inBacklog = backlog.some((o) => o.id === orderId);
        if (inBacklog && p.state && p.state !== "created") {
          backlog = backlog.filter((o) => o.id !== orderId); // planned or cancelled
        } else if (p.state === "created" || event.type === "order.updated") {
          out.backlog = true; // new, back from a route, or moved: read the order again
        }
      }
    } else if (event.type.startsWith("route.")) {
      const routeId = p.route_id ?? Number(event.subject_id);
      if (event.type === "route.deleted") {
        if (routes?.some((r) => r.id === routeId)) {
          routes = routes.filter((r) => r.id !== routeId);
          out.touched.add(routeId);
        }
      } else if (day && (p.date === day.date || routes?.some((r) => r.id === routeId))) {
        // The payload has no stops; the route's detail has. A route moved to another
        // day comes back with that date and leaves the picture.
        out.routes.add(routeId);
        out.touched.add(routeId);
        if (p.status) patchRoute(routeId, (route) => (route.status === p.status ? route : { ...route, status: p.status }));
      }
    } else if (event.type === "driver.duty_changed") {
      const driverId = p.driver_id ?? Number(event.subject_id);
      out.drivers = out.drivers.map((d) => (d.id === driverId ? { ...d, on_duty: Boolean(p.on_duty) } : d));
    } else if (event.type === "driver.created" || event.type === "driver.updated") {
      out.refetchDrivers = true;
    } else if (event.type.startsWith("hub.")) {
      out.hubs = true;
    }
  }

  if (day && (routes !== day.routes || backlog !== day.backlog)) {
    out.day = updateDay(day, { routes, backlog });
  }
  return out;
}

function patchStop(stop, event) {
  const p = event.payload || {};
  const next = { ...stop, state: p.state ?? stop.state, outcome: p.outcome ?? stop.outcome };
  if ("failure_reason" in p) next.failure_reason = p.failure_reason;
  if (event.type === "stop.arrived" && !next.arrived_at) next.arrived_at = event.at;
  if ((event.type === "stop.completed" || event.type === "stop.failed") && !next.completed_at) next.completed_at = event.at;
  return next;
}
